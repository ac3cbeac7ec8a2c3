// Small progressive enhancements; every page works without them.
document.addEventListener("htmx:responseError", (event) => {
  const target = event.detail.target;
  if (target && event.detail.xhr.status >= 500) {
    target.innerHTML = '<p class="error">The server could not answer. Try again.</p>';
  }
});
