/* Forms marked data-submit-once (consent, sign-in, registration, the password and email forms) send one
 * post: a double click, or Enter pressed twice, would otherwise post the form twice (the server answers a
 * repeated consent with the first one's answer, but a second sign-in post makes a second session, a second
 * password change fails as "changed meanwhile", a second registration as "already exists"; one post is what
 * the person meant). Loaded on every page (base.html); a form opts in with the attribute.
 *
 * The buttons are disabled only after the browser has read the form for the first post: a button disabled
 * at once would leave its name and value (decision=allow) out of that post. Later submits of the form are
 * cancelled. A page shown again from the back-forward cache gets its buttons back. Without JavaScript the
 * form posts as usual.
 */
(function () {
  "use strict";
  function buttons(form) {
    return form.querySelectorAll("button, input[type=submit]");
  }
  document.querySelectorAll("form[data-submit-once]").forEach(function (form) {
    var sent = false;
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) return;
      if (sent) {
        event.preventDefault();
        return;
      }
      sent = true;
      setTimeout(function () {  // after this event: the post's form data is already read
        buttons(form).forEach(function (b) { b.disabled = true; });
        form.setAttribute("aria-busy", "true");
      }, 0);
    });
    window.addEventListener("pageshow", function (event) {
      if (!event.persisted) return;
      sent = false;
      form.removeAttribute("aria-busy");
      buttons(form).forEach(function (b) { b.disabled = false; });
    });
  });
})();
