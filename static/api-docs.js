// Starts Swagger UI on /api/docs over the OpenAPI document named by the page (marketplace/api/docs.py).
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: root.dataset.spec, dom_id: "#swagger-ui", deepLinking: true });
});
