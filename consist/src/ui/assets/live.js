// consist ui: an open runs page shows new runs without a reload. Every few seconds it asks the
// server for the same page's table (`partial=1`) and swaps it in when it changed.
(function () {
  var box = document.getElementById("runs");
  if (!box) return;
  var every = parseInt(box.getAttribute("data-poll-ms"), 10);
  if (!(every > 0)) return;
  function total() {
    var count = box.querySelector(".count");
    return count ? count.getAttribute("data-total") : "?";
  }
  function title() {
    document.title = "Runs (" + total() + ") · consist";
  }
  var last = null;
  function poll() {
    var url = location.pathname + location.search + (location.search ? "&" : "?") + "partial=1";
    fetch(url, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html !== last) { last = html; box.innerHTML = html; title(); }
      })
      .catch(function () { /* the server may be restarting: try again next time */ })
      .then(function () { setTimeout(poll, every); });
  }
  title();
  setTimeout(poll, every);
})();
