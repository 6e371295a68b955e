// Every console page: at phone width the nav scrolls sideways, so bring the current page's
// link into view (a file, not inline: the CSP runs no inline script).
const current = document.querySelector('.console-nav [aria-current="page"]');
if (current) current.scrollIntoView({ block: "nearest", inline: "center" });
