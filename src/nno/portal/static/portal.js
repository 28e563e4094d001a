// Copy buttons: <button data-copy="element-id"> copies that element's text. No inline scripts (CSP).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    button.textContent = "Copied";
  });
});
// Forms marked data-busy show that they were sent: the button is disabled and says so (no double submit).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.hasAttribute || !form.hasAttribute("data-busy")) return;
  var button = form.querySelector("button[type=submit]");
  if (!button) return;
  window.setTimeout(function () { button.disabled = true; button.textContent = form.getAttribute("data-busy"); }, 0);
});
