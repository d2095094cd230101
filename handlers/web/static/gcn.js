// The GCN event page: the sky map, and its zoom to the 90% region and back to the whole sky.
"use strict";

(() => {
  const div = document.getElementById("sky-map");
  skybroker.plot("sky-map", "sky-map-json", "sky-map-data");
  const sky = () => Bokeh.documents[0] && Bokeh.documents[0].get_model_by_name("sky");
  const setView = (x0, x1, y0, y1) => {
    const fig = sky();
    if (!fig) return;
    fig.x_range.setv({ start: x0, end: x1 });
    fig.y_range.setv({ start: y0, end: y1 });
  };
  const zoom = document.getElementById("zoom-region");
  if (zoom && div.dataset.zoom) {
    zoom.addEventListener("click", () => setView(...div.dataset.zoom.split(",").map(Number)));
  }
  const whole = Math.SQRT2;
  document.getElementById("zoom-sky").addEventListener("click",
    () => setView(-2 * whole * 1.02, 2 * whole * 1.02, -whole * 1.04, whole * 1.04));
})();
