// Markdown for model and user text, by maintained libraries vendored under ./vendor (versions,
// licenses and how they were fetched: vendor/README.md): markdown-it parses (CommonMark + GFM
// tables and strikethrough), highlight.js colours code, KaTeX writes $…$ / $$…$$ math as
// MathML, and DOMPurify sanitizes the result.
//
// Safety: markdown-it runs with `html: false`, so raw HTML in the source comes out as escaped
// text ("<script>" is shown, never run). Links keep only absolute http(s) and mailto URLs;
// images are never loaded from elsewhere: an image becomes a link to it. DOMPurify then cleans
// the whole output as a second line of defence, and no element keeps a `style` attribute (the
// Content-Security-Policy allows none, so KaTeX writes MathML, which needs no inline style,
// and table alignment is a class).
//
// Streaming re-renders the partial answer every animation frame: an unclosed code fence runs
// to the end (CommonMark), and TeX that does not parse yet (a formula still arriving) is shown
// as its source until it does.

import MarkdownIt from "./vendor/markdown-it-15.0.3/markdown-it.esm.min.mjs";
import hljs from "./vendor/highlight.js-11.12.0/highlight.min.js";
import { tasklist } from "./vendor/mdit-plugin-tasklist-0.23.2/index.js";
import { tex } from "./vendor/mdit-plugin-tex-0.24.2/index.js";
// KaTeX and DOMPurify ship their minified builds as UMD only (KaTeX's ES module is unminified,
// 2.2x the bytes): imported for their side effect, they define globalThis.katex / .DOMPurify.
import "./vendor/katex-0.19.1/katex.min.js";
import "./vendor/dompurify-3.5.0/purify.min.js";

const { katex, DOMPurify } = globalThis;

const SAFE_URL = /^(?:https?:\/\/|mailto:)/i;
const LINK_REL = "noopener noreferrer nofollow";

const md = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false });
const escapeHtml = md.utils.escapeHtml;
// "&lt;" stays the five characters a model wrote, as before, instead of becoming "<".
md.disable("entity");

// Every link markdown-it makes (inline, reference, autolink, bare URL) passes through here,
// after normalization (control characters are already percent-encoded or replaced).
md.validateLink = (url) => SAFE_URL.test(url.trim());

function codeBlock(code, info) {
  const lang = (info || "").trim().split(/\s+/)[0].toLowerCase();
  const known = lang && hljs.getLanguage(lang) ? lang : "";
  const body = known ? hljs.highlight(code, { language: known, ignoreIllegals: true }).value : escapeHtml(code);
  return (
    `<div class="code-block"><div class="code-head"><span class="code-lang">${escapeHtml(lang || "text")}</span>` +
    `<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>` +
    `<pre><code class="hljs${known ? ` language-${escapeHtml(known)}` : ""}">${body}</code></pre></div>`
  );
}
md.renderer.rules.fence = (tokens, i) => codeBlock(tokens[i].content.replace(/\n$/, ""), tokens[i].info);
md.renderer.rules.code_block = (tokens, i) => codeBlock(tokens[i].content.replace(/\n$/, ""), "");

md.renderer.rules.link_open = (tokens, i, options, env, self) => {
  tokens[i].attrSet("target", "_blank");
  tokens[i].attrSet("rel", LINK_REL);
  return self.renderToken(tokens, i, options);
};

// An image is a link to it (labelled with its alt text), never an <img> fetching a URL the
// model chose; inside a link, only its alt text.
md.renderer.rules.image = (tokens, i, options, env, self) => {
  const token = tokens[i];
  const src = token.attrGet("src");
  const label = escapeHtml(self.renderInlineAsText(token.children, options, env) || src);
  let depth = 0;
  for (let j = 0; j < i; j++) depth += tokens[j].type === "link_open" ? 1 : tokens[j].type === "link_close" ? -1 : 0;
  if (depth > 0 || !src) return label;
  return `<a class="image-link" href="${escapeHtml(src)}" target="_blank" rel="${LINK_REL}">${label}</a>`;
};

// Tables scroll sideways inside .table-wrap; alignment is a class (markdown-it writes style="").
md.renderer.rules.table_open = () => '<div class="table-wrap"><table>\n';
md.renderer.rules.table_close = () => "</table></div>\n";
for (const rule of ["th_open", "td_open"]) {
  md.renderer.rules[rule] = (tokens, i, options, env, self) => {
    const token = tokens[i];
    const align = (token.attrGet("style") || "").match(/text-align:\s*(left|center|right)/);
    if (token.attrs) token.attrs = token.attrs.filter(([name]) => name !== "style");
    if (align) token.attrJoin("class", `align-${align[1]}`);
    return self.renderToken(tokens, i, options);
  };
}

function math(source, displayMode) {
  try {
    const html = katex.renderToString(source, { displayMode, output: "mathml", throwOnError: true, strict: "ignore", trust: false });
    return displayMode ? `<div class="math-block">${html}</div>` : html;
  } catch {
    // Not (yet) valid TeX: a formula still streaming in, or a typo. Show what was written.
    const text = escapeHtml(displayMode ? `$$${source.replace(/\n$/, "")}$$` : `$${source}$`);
    return displayMode ? `<pre class="math-source">${text}</pre>` : `<code class="math-source">${text}</code>`;
  }
}
// After the fence rule above: `mathFence` wraps it, so ```math blocks are formulas too.
md.use(tex, { delimiters: "dollars", mathFence: true, render: math });
// "- [ ] task" / "- [x] done": disabled checkboxes, no ids (several answers share a page).
md.use(tasklist, { disabled: true, label: false });

const PURIFY = {
  // KaTeX's MathML keeps the TeX source in <semantics><annotation> (DOMPurify drops both by
  // default, and would show the annotation's text); <annotation-xml> stays forbidden.
  ADD_TAGS: ["semantics", "annotation"],
  ADD_ATTR: ["target"],
  FORBID_ATTR: ["style", "id"],
  // DOMPurify's own default, less the schemes other than http(s) and mailto (tel:, sms:, …);
  // it is tested against every attribute value, so values without a scheme must still pass.
  ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i,
};

// Sanitized HTML per top-level block, keyed by the block's source lines (and the reference
// definitions, the one thing a block reads from elsewhere). DOMPurify is most of the cost of a
// render, and a stream repaints its growing answer every frame, as the thread re-renders every
// stored answer on each change: only new or changed blocks are rendered and sanitized again.
// The last block is never kept (while streaming it changes every frame). Least recently used
// entries go first.
const blocks = new Map();
const MAX_BLOCKS = 1000;

// One DOMPurify call for all the blocks to sanitize (a call costs ~0.15 ms before any work),
// each in a wrapper to split them apart again.
function sanitizeEach(htmls) {
  if (htmls.length === 1) return [DOMPurify.sanitize(htmls[0], PURIFY)];
  const body = DOMPurify.sanitize(htmls.map((h) => `<div>${h}</div>`).join(""), { ...PURIFY, RETURN_DOM: true });
  const parts = [...body.children];
  // Each block's HTML is balanced, so this always holds; if it ever did not, no caching.
  if (parts.length !== htmls.length) return null;
  return parts.map((div) => div.innerHTML);
}

// Markdown source -> sanitized HTML for innerHTML.
export function renderMarkdown(source) {
  // Line numbers in token.map count lines of the text markdown-it normalized this way.
  const text = String(source ?? "").replace(/\u0000/g, "").replace(/\r\n?/g, "\n");
  const env = {};
  const tokens = md.parse(text, env);
  const lines = text.split("\n");
  const refs = env.references ? JSON.stringify(env.references) : "";
  const out = []; // sanitized HTML, or {key, html} still to sanitize
  for (let start = 0; start < tokens.length; ) {
    let end = start;
    let depth = 0;
    do depth += tokens[end++].nesting;
    while (depth > 0 && end < tokens.length);
    const map = end < tokens.length ? tokens[start].map : null;
    const key = map && `${refs}\u0000${lines.slice(map[0], map[1]).join("\n")}`;
    const cached = key ? blocks.get(key) : undefined;
    if (cached !== undefined) {
      blocks.delete(key); // most recently used: to the end of the eviction order
      blocks.set(key, cached);
      out.push(cached);
    } else {
      out.push({ key, html: md.renderer.render(tokens.slice(start, end), md.options, env) });
    }
    start = end;
  }
  const todo = out.filter((b) => typeof b !== "string");
  if (!todo.length) return out.join("");
  const clean = sanitizeEach(todo.map((b) => b.html));
  if (!clean) return DOMPurify.sanitize(out.map((b) => (typeof b === "string" ? b : b.html)).join(""), PURIFY);
  todo.forEach((b, i) => {
    b.clean = clean[i];
    if (!b.key) return;
    blocks.set(b.key, b.clean);
    if (blocks.size > MAX_BLOCKS) blocks.delete(blocks.keys().next().value);
  });
  return out.map((b) => (typeof b === "string" ? b : b.clean)).join("");
}
