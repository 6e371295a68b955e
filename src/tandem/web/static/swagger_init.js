// Starts Swagger UI on /docs (tandem.web.api_docs) from the vendored bundle. A file, not an
// inline script: the docs' Content-Security-Policy runs scripts from this origin only.
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis],
});
