// /alerts: "expand all" / "collapse all" for the rule list. The page works without it.
(function () {
  "use strict";
  var bar = document.getElementById("expand-bar");
  if (!bar) { return; }
  bar.hidden = false;
  function setAll(open) {
    document.querySelectorAll("details.rule").forEach(function (d) { d.open = open; });
  }
  document.getElementById("expand-all").addEventListener("click", function () { setAll(true); });
  document.getElementById("collapse-all").addEventListener("click", function () { setAll(false); });
})();
