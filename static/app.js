// Small progressive enhancements; every page works without them.

// The strings scripts show, translated by the server into the page's language (base.html).
const uiStrings = JSON.parse(document.getElementById("ui-strings")?.textContent || "{}");

document.addEventListener("htmx:responseError", (event) => {
  const target = event.detail.target;
  if (target && event.detail.xhr.status >= 500) {
    const message = document.createElement("p");
    message.className = "error";
    message.textContent = uiStrings.server_error || "The server could not answer. Try again.";
    target.replaceChildren(message);
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
