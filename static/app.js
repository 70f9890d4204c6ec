// Dial-A-Joke: what the script adds to pages that work without it.
// - The schedule form's empty fields get the browser's time zone and a time a couple of minutes ahead;
//   the recurring-call form's empty zone gets the browser's zone too.
// - The browser's zone is remembered in a cookie, so the chart counts the viewer's days.
// - A call due in another zone also shows its time in the viewer's zone.
// - The lists, the chart and a call's timeline follow the server's event stream (/events), live.
(function () {
  "use strict";

  var MINUTES_AHEAD = 2;
  var ZONE_COOKIE = "dialajoke_tz";
  var viewerZone = browserTimeZone();

  function pad(number) {
    return String(number).padStart(2, "0");
  }

  function browserTimeZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      return "";
    }
  }

  function fillIfEmpty(input, value) {
    if (input && !input.value && value) {
      input.value = value;
    }
  }

  function prefill(form) {
    // A couple of minutes ahead: soon enough to try the service, late enough to still be in the future.
    var soon = new Date(Date.now() + MINUTES_AHEAD * 60 * 1000);
    var elements = form.elements;
    fillIfEmpty(elements.namedItem("timezone"), viewerZone);
    fillIfEmpty(
      elements.namedItem("date"),
      soon.getFullYear() + "-" + pad(soon.getMonth() + 1) + "-" + pad(soon.getDate())
    );
    fillIfEmpty(elements.namedItem("time"), pad(soon.getHours()) + ":" + pad(soon.getMinutes()));
  }

  function rememberZone() {
    // Zone names are letters, digits and _ + - /, all safe in a cookie as they are.
    if (/^[A-Za-z0-9_+\-\/]+$/.test(viewerZone)) {
      document.cookie = ZONE_COOKIE + "=" + viewerZone + "; path=/; max-age=31536000; samesite=strict";
    }
  }

  var viewerClock = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });

  function showViewerTime(row) {
    var time = row.querySelector(".call-when time");
    if (!time || !viewerZone || row.getAttribute("data-zone") === viewerZone || row.querySelector(".call-yours")) {
      return;
    }
    var when = new Date(time.getAttribute("datetime"));
    if (isNaN(when.getTime())) {
      return;
    }
    var line = document.createElement("span");
    line.className = "call-yours";
    line.textContent = "Your time: " + viewerClock.format(when);
    time.parentNode.appendChild(line);
  }

  function showViewerTimes() {
    Array.prototype.forEach.call(document.querySelectorAll(".call"), showViewerTime);
  }

  function announce(text) {
    var announcer = document.getElementById("live-announcer");
    if (announcer) {
      announcer.textContent = text;
    }
  }

  function setIndicator(state, text) {
    var indicator = document.getElementById("live-indicator");
    if (indicator) {
      indicator.hidden = false;
      indicator.setAttribute("data-state", state);
      indicator.textContent = text;
    }
  }

  function elementFrom(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  // Replaces the elements with these ids by their namesakes in a fresh copy of the page at url.
  function refresh(url, ids, then) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ids.forEach(function (id) {
          var current = document.getElementById(id);
          var replacement = fresh.getElementById(id);
          if (current && replacement) {
            current.replaceWith(document.importNode(replacement, true));
          }
        });
        if (then) {
          then();
        }
      })
      .catch(function () { setIndicator("stale", "Out of date: reload the page"); });
  }

  function updateEmptyNote(list) {
    var empty = list.querySelector(".empty");
    if (empty) {
      empty.hidden = list.querySelector(".call") !== null;
    }
  }

  // Upcoming calls stay in due order; finished ones go on top, newest first.
  function place(list, row, terminal) {
    var calls = list.querySelectorAll(".call");
    var due = row.getAttribute("data-due");
    for (var i = 0; i < calls.length; i += 1) {
      if (terminal || calls[i].getAttribute("data-due") > due) {
        list.insertBefore(row, calls[i]);
        return;
      }
    }
    list.insertBefore(row, list.querySelector(".empty"));
  }

  function statusOf(row) {
    var badge = row && row.querySelector(".badge");
    return badge ? badge.getAttribute("data-status") : "";
  }

  function showCall(message) {
    var target = document.getElementById(message.terminal ? "recent-list" : "upcoming-list");
    var row = elementFrom(message.row);
    if (!target || !row) {
      return;
    }
    var old = document.getElementById(row.id);
    var hadFocus = old && old.contains(document.activeElement);
    showViewerTime(row);
    if (old && old.parentNode === target) {
      target.replaceChild(row, old);
    } else {
      if (old) {
        var from = old.parentNode;
        from.removeChild(old);
        updateEmptyNote(from);
      }
      place(target, row, message.terminal);
    }
    updateEmptyNote(target);
    if (hadFocus) {
      row.querySelector(".call-link").focus();
    }
    if (statusOf(old) !== statusOf(row)) {
      announce(row.querySelector(".call-to").textContent + ", " + row.querySelector(".badge").textContent);
    }
    // A recurring call that moved on changes its rule's "next call".
    if (row.getAttribute("data-rule")) {
      refresh("/", ["rules-list"]);
    }
  }

  function showChart(message) {
    var holder = document.getElementById("outcomes-chart");
    if (holder) {
      var numbersOpen = holder.querySelector("details[open]") !== null;
      holder.innerHTML = message.html;
      var details = holder.querySelector("details");
      if (details && numbersOpen) {
        details.open = true;
      }
    }
  }

  function follow(handlers) {
    if (!window.EventSource) {
      return;
    }
    var source = new EventSource("/events");
    var connectedBefore = false;
    source.addEventListener("open", function () {
      setIndicator("on", "Live");
      // Changes made while the stream was down were missed: catch up once.
      if (connectedBefore) {
        handlers.resync();
      }
      connectedBefore = true;
    });
    source.addEventListener("error", function () { setIndicator("reconnecting", "Reconnecting…"); });
    source.addEventListener("call", function (event) { handlers.call(JSON.parse(event.data)); });
    source.addEventListener("chart", function (event) { handlers.chart(JSON.parse(event.data)); });
    source.addEventListener("resync", function () { handlers.resync(); });
  }

  function followSchedulePage() {
    follow({
      call: showCall,
      chart: showChart,
      resync: function () { refresh("/", ["rules-list", "upcoming-list", "recent-list"], showViewerTimes); }
    });
  }

  function followCallPage(detail) {
    var id = detail.getAttribute("data-call-id");
    var reload = function () { refresh(window.location.pathname, ["call-detail"]); };
    follow({
      call: function (message) {
        if (message.id === id) {
          reload();
          var row = elementFrom(message.row);
          announce("Call " + (row ? row.querySelector(".badge").textContent : "updated"));
        }
      },
      chart: function () {},
      resync: reload
    });
  }

  rememberZone();
  showViewerTimes();
  var form = document.getElementById("schedule-form");
  if (form) {
    prefill(form);
    followSchedulePage();
  }
  var ruleForm = document.getElementById("rule-form");
  if (ruleForm) {
    fillIfEmpty(ruleForm.elements.namedItem("timezone"), viewerZone);
  }
  var detail = document.getElementById("call-detail");
  if (detail) {
    followCallPage(detail);
  }
})();
