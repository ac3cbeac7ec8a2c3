// Small progressive enhancements; every page works without them.
document.addEventListener("htmx:responseError", (event) => {
  const target = event.detail.target;
  if (target && event.detail.xhr.status >= 500) {
    target.innerHTML = '<p class="error">The server could not answer. Try again.</p>';
  }
});

// The account menu closes on a click elsewhere or on Escape.
document.addEventListener("click", (event) => {
  document.querySelectorAll("details.account[open]").forEach((menu) => {
    if (!menu.contains(event.target)) menu.removeAttribute("open");
  });
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  document.querySelectorAll("details.account[open]").forEach((menu) => {
    menu.removeAttribute("open");
    menu.querySelector("summary").focus();
  });
});
