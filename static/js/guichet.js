// Guichet: the only script. Pages work without it; it only moves focus to a form's error summary
// so keyboard and screen-reader users land on the list of problems (RGAA 11.10, WCAG 3.3.1).
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.getElementById("form-errors");
  if (summary) { summary.focus(); }
});
