// consist ui: a lineage picture opens scrolled to what it is about (a long chain is wider than
// the window, and its focus is at one end).
(function () {
  var box = document.querySelector(".graph");
  var focus = box && box.querySelector(".focus rect");
  if (!focus) return;
  var x = parseFloat(focus.getAttribute("x")), y = parseFloat(focus.getAttribute("y"));
  box.scrollLeft = Math.max(0, x - box.clientWidth / 2);
  box.scrollTop = Math.max(0, y - box.clientHeight / 2);
})();
