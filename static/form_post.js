// OAuth 2.0 Form Post Response Mode: submit the response to the client as soon as the page
// loads. A separate file, so the page's Content-Security-Policy needs no inline script; the
// button stays for browsers without JavaScript.
document.getElementById("response").submit();
