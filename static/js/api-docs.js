// The API documentation page: Swagger UI on this site's own OpenAPI document. A file of its
// own, because the Content-Security-Policy runs no inline script.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    // Nothing is sent elsewhere: no validator badge, which would call a public server.
    validatorUrl: null,
  });
})();
