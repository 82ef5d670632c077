// The API's reference page (/api/v1/docs): Swagger UI over the OpenAPI document, in a file of its
// own because the Content-Security-Policy runs no inline script.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("api-docs");
  window.ui = SwaggerUIBundle({
    url: root.dataset.spec,
    domNode: root,
    deepLinking: true,
    // no badge asking a validator elsewhere: the page talks to this server only
    validatorUrl: null,
    defaultModelsExpandDepth: 1,
    displayOperationId: true,
    // a key typed into "Authorize" is kept for this tab only
    persistAuthorization: false,
  });
});
