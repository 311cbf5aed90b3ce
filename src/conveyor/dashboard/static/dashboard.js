// Conveyor dashboard: live numbers and SVG graphs for the overview, confirmations and
// select-all for the forms. Plain browser JavaScript, no dependencies, no build step.
// Live numbers arrive by server-sent events (GET /api/events); a page whose stream cannot be
// opened (an old proxy, the server's stream limit) polls the JSON API instead.
"use strict";

(function () {
  const body = document.body;
  const base = body.dataset.base || "";
  const pollMs = Math.max(500, parseInt(body.dataset.pollMs || "2000", 10));
  const SVG = "http://www.w3.org/2000/svg";
  const HISTORY = 150;

  // -- forms ------------------------------------------------------------------------------------
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });
  document.querySelectorAll("[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      const table = box.closest("table");
      table.querySelectorAll('input[type="checkbox"][name="ids"]').forEach(function (item) {
        item.checked = box.checked;
      });
    });
  });

  // -- formatting -------------------------------------------------------------------------------
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    if (seconds < 3600) {
      return Math.floor(seconds / 60) + "m " + String(Math.floor(seconds % 60)).padStart(2, "0") + "s";
    }
    return Math.floor(seconds / 3600) + "h " + String(Math.floor((seconds % 3600) / 60)).padStart(2, "0") + "m";
  }
  function rate(perSecond) {  // slow queues read better per minute
    return perSecond >= 1 ? perSecond.toFixed(1) + "/s" : (perSecond * 60).toFixed(1) + "/min";
  }
  function percent(value) { return Math.round(value * 100) + "%"; }
  function compact(value) {
    if (value >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (value >= 1e4) return (value / 1e3).toFixed(0) + "k";
    if (value >= 1e3) return (value / 1e3).toFixed(1) + "k";
    if (value > 0 && value < 1) return value.toFixed(2);
    return String(Math.round(value));
  }

  function setText(root, selector, text) {
    const node = root && root.querySelector(selector);
    if (node && node.textContent !== text) node.textContent = text;
  }

  // -- SVG charts -------------------------------------------------------------------------------
  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function box(svg) {
    const view = svg.viewBox.baseVal;
    return { width: view.width, height: view.height };
  }

  // series: [{name, points: [[x, y], ...]}]; x is epoch milliseconds.
  // floor: the least top of the y axis, so a flat zero line sits at the bottom, not mid-air.
  function drawChart(svg, series, format, floor) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const size = box(svg);
    const left = 34, right = 6, top = 8, bottom = 16;
    const all = [].concat.apply([], series.map(function (s) { return s.points; }));
    svg.appendChild(el("line", { x1: left, y1: size.height - bottom, x2: size.width - right,
      y2: size.height - bottom, class: "axis" }));
    if (all.length < 1) {
      svg.appendChild(el("text", { x: size.width / 2, y: size.height / 2, "text-anchor": "middle",
        class: "nodata" }, "no data yet"));
      return;
    }
    const xs = all.map(function (p) { return p[0]; });
    const ys = all.map(function (p) { return p[1]; });
    const x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    const yMax = Math.max(floor, Math.max.apply(null, ys)) * 1.1;
    const w = size.width - left - right, h = size.height - top - bottom;
    const sx = function (x) { return left + (x1 === x0 ? w : ((x - x0) / (x1 - x0)) * w); };
    const sy = function (y) { return top + h - (y / yMax) * h; };
    svg.appendChild(el("line", { x1: left, y1: top, x2: size.width - right, y2: top, class: "axis" }));
    svg.appendChild(el("text", { x: left - 4, y: top + 4, "text-anchor": "end", class: "tick" },
      format(yMax / 1.1)));
    svg.appendChild(el("text", { x: left - 4, y: size.height - bottom + 3, "text-anchor": "end",
      class: "tick" }, format(0)));
    const span = (x1 - x0) / 1000;
    if (span >= 1) {
      svg.appendChild(el("text", { x: left, y: size.height - 3, class: "tick" },
        "-" + duration(span).replace(".0 s", " s")));
    }
    svg.appendChild(el("text", { x: size.width - right, y: size.height - 3, "text-anchor": "end",
      class: "tick" }, "now"));
    series.forEach(function (s, index) {
      const path = s.points.map(function (p) { return sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1); });
      if (path.length > 1) {
        svg.appendChild(el("polyline", { points: path.join(" "), class: "line s" + (index % 6) }));
      }
      if (path.length < 3) {  // too few for a line to show: mark each point
        s.points.forEach(function (p) {
          svg.appendChild(el("circle", { cx: sx(p[0]).toFixed(1), cy: sy(p[1]).toFixed(1), r: 2.5,
            class: "dot s" + (index % 6) }));
        });
      }
    });
  }

  function drawSpark(svg, points) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const size = box(svg);
    if (points.length < 2) return;
    const ys = points.map(function (p) { return p[1]; });
    const x0 = points[0][0], x1 = points[points.length - 1][0];
    const yMax = Math.max(1e-9, Math.max.apply(null, ys));
    const sx = function (x) { return x1 === x0 ? size.width : ((x - x0) / (x1 - x0)) * size.width; };
    const sy = function (y) { return size.height - 2 - (y / yMax) * (size.height - 4); };
    const line = points.map(function (p) { return sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1); });
    const area = line.concat([sx(x1).toFixed(1) + "," + size.height, sx(x0).toFixed(1) + "," + size.height]);
    svg.appendChild(el("polygon", { points: area.join(" "), class: "area s0" }));
    svg.appendChild(el("polyline", { points: line.join(" "), class: "line s0" }));
  }

  function legend(svg, names) {
    const figure = svg.closest("figure");
    let node = figure.querySelector(".legend");
    if (!node) { node = document.createElement("div"); node.className = "legend"; figure.appendChild(node); }
    node.textContent = "";
    names.forEach(function (name, index) {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.className = "s" + (index % 6);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(name));
      node.appendChild(item);
    });
  }

  // -- live figures: one event stream, or polling when there is none -----------------------------
  // onStats(stats) gets every StatsView; pollUrl answers what polling reads instead, handled by
  // onPolled. body[data-live] says which is in use ("sse" or "polling"), and
  // body[data-sse-events] counts the events received (the browser tests read both).
  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      });
  }
  function follow(window_, onStats, pollUrl, onPolled, onFailure) {
    let polling = false;
    function poll() {
      getJson(pollUrl)
        .then(onPolled)
        .catch(onFailure)
        .finally(function () { window.setTimeout(poll, pollMs); });
    }
    function fallBack() {
      if (polling) return;
      polling = true;
      body.dataset.live = "polling";
      poll();
    }
    if (!window.EventSource) { fallBack(); return; }
    const source = new EventSource(base + "/api/events?window=" + encodeURIComponent(window_));
    let received = 0;
    source.addEventListener("stats", function (event) {
      received += 1;
      body.dataset.live = "sse";
      body.dataset.sseEvents = String(received);
      onStats(JSON.parse(event.data));
    });
    source.addEventListener("error", function () {
      // CONNECTING: the browser reconnects by itself. CLOSED: refused (503, 401) for good.
      if (source.readyState === EventSource.CLOSED) { source.close(); fallBack(); }
      else if (onFailure) onFailure();
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // -- a queue page's live numbers (its task list stays as loaded: rows do not jump) -----------
  const liveQueue = document.querySelector("[data-live-queue]");
  if (liveQueue) {
    const tabs = document.querySelector(".tabs");
    const name = liveQueue.dataset.liveQueue;
    const showQueue = function (q) {
      setText(liveQueue, '[data-field="depth"]', String(q.depth));
      setText(liveQueue, '[data-field="running"]', String(q.running));
      setText(liveQueue, '[data-field="workers"]', String(q.workers));
      setText(liveQueue, '[data-field="throughput"]', rate(q.throughput));
      setText(liveQueue, '[data-field="latency"]', duration(q.latency.p99));
      setText(liveQueue, '[data-field="oldest"]', duration(q.oldest_pending_age));
      Object.keys(q.counts).forEach(function (state) {
        setText(tabs, '[data-count="' + state + '"]', String(q.counts[state]));
      });
    };
    follow("300", function (stats) {
      stats.queues.forEach(function (q) { if (q.queue === name) showQueue(q); });
    }, base + "/api/queues/" + encodeURIComponent(name), showQueue, function () { /* retried */ });
  }

  // -- the overview's live loop -----------------------------------------------------------------
  const live = document.querySelector("[data-live-stats]");
  if (!live) return;
  const history = {};  // queue -> [[ms, depth], ...], sampled by this page while it is open

  function minuteSeries(queues, pick, combine) {
    const byMinute = {};
    queues.forEach(function (q) {
      q.series.forEach(function (point) {
        const value = pick(point);
        if (value === null || value === undefined) return;
        const at = Date.parse(point.at);
        byMinute[at] = byMinute[at] === undefined ? value : combine(byMinute[at], value);
      });
    });
    return Object.keys(byMinute).map(Number).sort(function (a, b) { return a - b; })
      .map(function (at) { return [at, byMinute[at]]; });
  }

  function update(stats) {
    const cards = Array.from(document.querySelectorAll(".card[data-queue]"));
    const shown = cards.map(function (c) { return c.dataset.queue; }).sort().join("\n");
    const names = stats.queues.map(function (q) { return q.queue; }).sort().join("\n");
    if (shown !== names) { window.location.reload(); return; }
    const now = Date.now();  // the page's clock: depth is sampled by the page (see below)
    let depth = 0, running = 0, dead = 0;
    stats.queues.forEach(function (q) {
      depth += q.depth; running += q.running; dead += q.counts.DEAD || 0;
      const points = history[q.queue] || (history[q.queue] = []);
      points.push([now, q.depth]);
      if (points.length > HISTORY) points.shift();
      const card = document.querySelector('.card[data-queue="' + CSS.escape(q.queue) + '"]');
      setText(card, '[data-field="depth"]', String(q.depth));
      Object.keys(q.counts).forEach(function (state) {
        setText(card, '[data-count="' + state + '"]', String(q.counts[state]));
      });
      setText(card, '[data-field="throughput"]', rate(q.throughput));
      setText(card, '[data-field="latency"]', [q.latency.p50, q.latency.p95, q.latency.p99].map(duration).join(" / "));
      setText(card, '[data-field="wait"]', duration(q.wait.p99));
      setText(card, '[data-field="oldest"]', duration(q.oldest_pending_age));
      setText(card, '[data-field="error_rate"]', percent(q.error_rate));
      setText(card, '[data-field="workers"]', String(q.workers));
      card.querySelector('[data-badge="paused"]').hidden = !q.paused;
      card.querySelector('[data-badge="no-workers"]').hidden = q.workers > 0;
      drawSpark(card.querySelector('[data-spark="depth"]'), points);
      drawSpark(card.querySelector('[data-spark="throughput"]'), q.series.map(function (p) {
        return [Date.parse(p.at), p.succeeded];
      }));
    });
    setText(live, '[data-total="depth"]', String(depth));
    setText(live, '[data-total="running"]', String(running));
    setText(live, '[data-total="dead-count"]', String(dead));
    setText(live, '[data-total="workers"]', String(stats.workers.workers.length));
    setText(live, '[data-total="utilization"]', percent(stats.workers.utilization));
    setText(live, '[data-total="slots"]', stats.workers.busy_slots + " / " + stats.workers.total_slots + " slots");

    const shownQueues = stats.queues.slice().sort(function (a, b) { return b.depth - a.depth; }).slice(0, 6);
    const depthChart = document.querySelector('[data-chart="depth"]');
    drawChart(depthChart, shownQueues.map(function (q) {
      return { name: q.queue, points: history[q.queue] || [] };
    }), compact, 1);
    legend(depthChart, shownQueues.map(function (q) { return q.queue; }));
    drawChart(document.querySelector('[data-chart="throughput"]'), [{ name: "succeeded",
      points: minuteSeries(stats.queues, function (p) { return p.succeeded; }, function (a, b) { return a + b; }) }], compact, 1);
    drawChart(document.querySelector('[data-chart="latency"]'), [{ name: "p99",
      points: minuteSeries(stats.queues, function (p) { return p.latency_p99; }, Math.max) }], duration, 0.001);
    body.dataset.updated = String(now);
  }

  let failures = 0;
  let latest = null;
  const fresh = function (stats) {
    failures = 0; latest = stats; live.classList.remove("stale"); update(stats);
  };
  // The stream sends only changes: between them the figures still hold, so the depth graph
  // gets a point each interval all the same.
  window.setInterval(function () {
    if (latest && body.dataset.live === "sse") update(latest);
  }, pollMs);
  const windowSeconds = live.dataset.window || "300";
  follow(windowSeconds, fresh, base + "/api/stats?window=" + encodeURIComponent(windowSeconds),
    fresh, function () { failures += 1; if (failures > 2) live.classList.add("stale"); });
})();
