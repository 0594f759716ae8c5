// The live chart of each panel of the page (see page.js): worst latency and arrivals per
// second over the last minute, with down bands and reconnect lines. Drawn by uPlot
// (/static/uPlot.iife.min.js, vendored from npm with its MIT licence: no CDN, no build).
"use strict";

const CHART_HEIGHT_PX = 120;
const CHART_SPAN_S = 60;  // the chart shows the last minute
// Redraw at most twice a second: a point is 250 ms wide, and a headless renderer on a busy
// machine must keep its time for the clients (their latency is what the page measures).
const CHART_REDRAW_MS = 500;

// Down periods (the client left "open" until it opened again) as red bands, and each
// reconnect as a green line: the page cannot see the server's faults, only what they did.
function drawMarks(u, client) {
  const {ctx, bbox} = u;
  const x = (ms) => u.valToPos(ms / 1000, "x", true);
  const [lo, hi] = [u.scales.x.min, u.scales.x.max];
  ctx.save();
  let downAt = null;
  const band = (from, to) => {
    const a = Math.max(bbox.left, x(from)), b = Math.min(bbox.left + bbox.width, x(to));
    if (b > a) { ctx.fillStyle = "rgba(236, 112, 99, 0.22)"; ctx.fillRect(a, bbox.top, b - a, bbox.height); }
  };
  for (const [at, kind] of client.marks) {
    if (kind === "down") { if (downAt === null) downAt = at; continue; }
    if (downAt === null) continue;  // the first open: not a reconnect
    band(downAt, at);
    downAt = null;
    if (at / 1000 >= lo && at / 1000 <= hi) {  // a reconnect
      ctx.strokeStyle = "#58d68d"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(x(at), bbox.top); ctx.lineTo(x(at), bbox.top + bbox.height); ctx.stroke();
    }
  }
  if (downAt !== null) band(downAt, Date.now());
  ctx.restore();
}

function makeChart(container, client) {
  const channel = client.primary;
  if (typeof uPlot === "undefined") return {update() {}};  // the vendored file did not load
  const plot = new uPlot({
    width: Math.max(200, container.clientWidth || 400), height: CHART_HEIGHT_PX,
    legend: {show: true, live: false},
    cursor: {show: false},
    scales: {x: {time: true}, ms: {auto: true}, rate: {auto: true}},
    axes: [
      {stroke: "#aaa", grid: {stroke: "#2a2a2a"}},
      {scale: "ms", stroke: "#5dade2", grid: {stroke: "#2a2a2a"}, size: 60},
      {scale: "rate", side: 1, stroke: "#f5b041", grid: {show: false}, size: 50},
    ],
    series: [
      {},
      // Points too: a poll answers once a second, so three steps in four have no latency.
      {label: "latency ms (worst per 250 ms)", scale: "ms", stroke: "#5dade2", points: {show: true, size: 3}},
      {label: "arrivals/s", scale: "rate", stroke: "#f5b041", width: 1},
    ],
    hooks: {draw: [(u) => drawMarks(u, client)]},
  }, [[], [], []], container);
  new ResizeObserver(() => plot.setSize({width: Math.max(200, container.clientWidth), height: CHART_HEIGHT_PX})).observe(container);
  let drawn = 0;
  return {
    plot,
    update() {
      if (Date.now() - drawn < CHART_REDRAW_MS) return;
      drawn = Date.now();
      channel.chartPoint(Date.now(), null);  // closes a finished step even when nothing arrives
      const pts = channel.points.filter(([at]) => at >= Date.now() - CHART_SPAN_S * 1000);
      plot.setData([pts.map((p) => p[0] / 1000), pts.map((p) => p[1]), pts.map((p) => p[2])]);
    },
  };
}

