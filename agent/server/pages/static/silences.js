// /silences: create a silence and expire one through Alertmanager's API v2 (the same
// endpoints amtool uses, behind the same write guard). Errors are shown as text.
(function () {
  "use strict";
  var form = document.getElementById("silence-form");

  function showError(el, text) {
    el.textContent = text;
    el.hidden = false;
  }

  // The API's error body: a JSON string, or {code, message}, or plain text.
  function errorText(response) {
    return response.text().then(function (body) {
      var text = body;
      try {
        var data = JSON.parse(body);
        text = typeof data === "string" ? data : (data && data.message) || body;
      } catch (e) { /* plain text */ }
      return response.status + " " + (text || response.statusText);
    });
  }

  // A Go duration (`1h30m`, `45m`, `2d` is not Go's: days are spelled `48h`) in ms.
  function durationMs(text) {
    var re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g, total = 0, used = 0, m;
    var units = { ms: 1, s: 1000, m: 60000, h: 3600000 };
    text = text.trim();
    while ((m = re.exec(text)) !== null) {
      if (m.index !== used) { return NaN; }
      total += parseFloat(m[1]) * units[m[2]];
      used = re.lastIndex;
    }
    return used === text.length && used > 0 ? total : NaN;
  }

  if (form) {
    var rows = document.getElementById("matcher-rows");
    document.getElementById("add-matcher").addEventListener("click", function () {
      var last = rows.lastElementChild;
      var row = last.cloneNode(true);
      row.querySelector(".m-name").value = "";
      row.querySelector(".m-value").value = "";
      row.querySelector(".m-op").value = "=";
      rows.appendChild(row);
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var error = document.getElementById("form-error");
      error.hidden = true;
      var matchers = [];
      rows.querySelectorAll(".matcher-row").forEach(function (row) {
        var name = row.querySelector(".m-name").value.trim();
        var op = row.querySelector(".m-op").value;
        if (!name) { return; }
        matchers.push({
          name: name,
          value: row.querySelector(".m-value").value,
          isRegex: op === "=~" || op === "!~",
          isEqual: op === "=" || op === "=~"
        });
      });
      if (matchers.length === 0) {
        showError(error, "Add at least one matcher: a label name and its value.");
        return;
      }
      var now = new Date();
      var until = document.getElementById("ends-at").value;
      var end;
      if (until) {
        end = new Date(until);  // the browser's local time
      } else {
        var ms = durationMs(document.getElementById("duration").value);
        if (!(ms > 0)) {
          showError(error, "Duration: expected a Go duration such as 30m, 2h or 1h30m.");
          return;
        }
        end = new Date(now.getTime() + ms);
      }
      var body = {
        matchers: matchers,
        startsAt: now.toISOString(),
        endsAt: end.toISOString(),
        createdBy: document.getElementById("created-by").value,
        comment: document.getElementById("comment").value
      };
      fetch("/api/v2/silences", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(body)
      }).then(function (response) {
        if (!response.ok) { return errorText(response).then(function (t) { showError(error, t); }); }
        return response.json().then(function (data) {
          var id = encodeURIComponent(data.silenceID);
          window.location.assign("/silences?created=" + id + "#silence-" + id);
        });
      }).catch(function (e) { showError(error, "Cannot reach the agent: " + e); });
    });
  }

  document.querySelectorAll("button.expire").forEach(function (button) {
    button.addEventListener("click", function () {
      var error = document.getElementById("expire-error");
      button.disabled = true;
      fetch("/api/v2/silence/" + encodeURIComponent(button.dataset.id), {
        method: "DELETE",
        credentials: "same-origin"
      }).then(function (response) {
        if (!response.ok) {
          button.disabled = false;
          return errorText(response).then(function (t) { showError(error, t); });
        }
        window.location.assign("/silences");
      }).catch(function (e) {
        button.disabled = false;
        showError(error, "Cannot reach the agent: " + e);
      });
    });
  });
})();
