// Links made by Alertmanager's default templates point into its web UI:
// `<external URL>/#/alerts?receiver=...` (Slack title links, PagerDuty client_url) and
// `/#/silences/...`. The fragment never reaches the server, so it lands here, on the
// overview; send it on to the page that shows the same thing in chatwatch.
(function () {
  "use strict";
  function follow() {
    var hash = window.location.hash;
    if (hash.indexOf("#/alerts") === 0) {
      window.location.replace("/alerts");
    } else if (hash.indexOf("#/silences") === 0) {
      window.location.replace("/silences");
    }
  }
  follow();
  window.addEventListener("hashchange", follow);
})();
