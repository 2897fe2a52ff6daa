// nbtrade interactive report: one lightweight-charts chart with four panes sharing one time axis
// (price+volume, equity, drawdown, exposure), so zoom and pan stay linked. Data come from the
// <script type="application/json" id="nbtrade-data"> block written by nbtrade/report/interactive.py;
// every text shown (tooltips, numbers) was formatted in Python by nbtrade.format.
(function () {
  "use strict";
  const LWC = window.LightweightCharts;
  const D = JSON.parse(document.getElementById("nbtrade-data").textContent);
  const box = document.getElementById("nbtrade-chart");
  const tip = document.getElementById("nbtrade-tooltip");
  const legend = document.getElementById("nbtrade-legend");
  const select = document.getElementById("nbtrade-symbol");
  const MAX_MARKERS = 150;   // more events than this in view: cluster them
  const CLUSTERS = 60;       // about this many clusters across the view
  const t = D.t;
  // the browser's side of nbtrade.format.price: 6 significant digits, thousands separators
  const num = (v) => (v === null || v === undefined ? "–" : v.toLocaleString("en-US", { maximumSignificantDigits: 6 }));
  const pct = (v) => (v === null || v === undefined ? "–" : (Math.abs(v) >= 10
    ? v.toLocaleString("en-US", { maximumFractionDigits: 0 }) : v.toFixed(1)) + "%");

  // nbtrade.format.money: separators and 2 decimals (funding paid)
  const money = (v) => (v === null || v === undefined ? "–"
    : v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
  const numFormat = { type: "custom", formatter: num, minMove: 1e-8 };
  const moneyFormat = { type: "custom", formatter: money, minMove: 0.01 };
  const chart = LWC.createChart(box, {
    autoSize: true,
    layout: { background: { color: "#ffffff" }, textColor: "#334155", fontSize: 11,
              panes: { separatorColor: "#cbd5e1", enableResize: true } },
    grid: { vertLines: { color: "#f1f5f9" }, horzLines: { color: "#f1f5f9" } },
    rightPriceScale: { borderColor: "#e2e8f0" },
    timeScale: { borderColor: "#e2e8f0", timeVisible: true, secondsVisible: false, minBarSpacing: 0.01 },
    crosshair: { mode: LWC.CrosshairMode.Normal },
  });

  // pane 0: price (candles, or a line when only closes are known) and volume on an overlay scale
  const candle = D.ohlc
    ? chart.addSeries(LWC.CandlestickSeries, { upColor: "#16a34a", downColor: "#dc2626", borderVisible: false,
                                               wickUpColor: "#16a34a", wickDownColor: "#dc2626",
                                               priceFormat: numFormat }, 0)
    : chart.addSeries(LWC.LineSeries, { color: "#2563eb", lineWidth: 1, priceFormat: numFormat }, 0);
  const volume = chart.addSeries(LWC.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "vol",
                                                        color: "rgba(100,116,139,0.35)", lastValueVisible: false,
                                                        priceLineVisible: false }, 0);
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  const markers = LWC.createSeriesMarkers(candle, []);

  // pane 1: equity and benchmarks; pane 2: drawdown [%]; pane 3: exposure [%], smoothed
  const palette = ["#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#0ea5e9", "#64748b"];
  const line = (values) => values.map((v, i) => (v === null ? { time: t[i] } : { time: t[i], value: v }));
  Object.entries(D.equity).forEach(([name, values], k) => {
    const s = chart.addSeries(LWC.LineSeries, { color: palette[k % palette.length], lineWidth: k ? 1 : 2,
                                                title: name, priceLineVisible: false,
                                                priceFormat: numFormat }, 1);
    s.setData(line(values));
  });
  const pctFormat = { type: "custom", formatter: pct, minMove: 0.01 };
  const dd = chart.addSeries(LWC.AreaSeries, { lineColor: "#dc2626", topColor: "rgba(220,38,38,0.05)",
                                               bottomColor: "rgba(220,38,38,0.35)", lineWidth: 1,
                                               title: "drawdown", priceFormat: pctFormat,
                                               priceLineVisible: false, invertFilledArea: true }, 2);
  dd.setData(line(D.drawdown));
  if (D.exposure) {
    const ex = chart.addSeries(LWC.AreaSeries, { lineColor: "#64748b", topColor: "rgba(100,116,139,0.35)",
                                                 bottomColor: "rgba(100,116,139,0.05)", lineWidth: 1,
                                                 title: D.exposure_title, priceFormat: pctFormat,
                                                 priceLineVisible: false }, 3);
    ex.setData(line(D.exposure));
  }
  // perpetuals and margined runs: cumulative funding paid [quote] and margin used / equity [%]
  let nextPane = D.exposure ? 4 : 3;
  const fundingSeries = [];  // [name, series]: their values join the legend under the pointer
  let marginSeries = null;
  const symbolPalette = ["#10b981", "#f59e0b", "#0ea5e9", "#ec4899", "#84cc16", "#64748b"];
  const extraPanes = [];
  if (D.funding) {
    const fpane = nextPane++;
    extraPanes.push(fpane);
    Object.entries(D.funding).forEach(([name, values], k) => {
      const s = chart.addSeries(LWC.LineSeries, { color: k ? symbolPalette[(k - 1) % symbolPalette.length] : "#7c3aed",
                                                  lineWidth: k ? 1 : 2, title: `funding paid: ${name}`,
                                                  priceLineVisible: false, priceFormat: moneyFormat }, fpane);
      s.setData(line(values));
      fundingSeries.push([name, s]);
    });
  }
  if (D.margin) {
    const mpane = nextPane++;
    extraPanes.push(mpane);
    const mg = chart.addSeries(LWC.AreaSeries, { lineColor: "#0891b2", topColor: "rgba(8,145,178,0.35)",
                                                 bottomColor: "rgba(8,145,178,0.05)", lineWidth: 1,
                                                 title: "margin used / equity", priceFormat: pctFormat,
                                                 priceLineVisible: false }, mpane);
    mg.setData(line(D.margin));
    marginSeries = mg;
  }
  const panes = chart.panes();
  [4, 2, 1, 1].forEach((f, i) => panes[i] && panes[i].setStretchFactor(f));
  extraPanes.forEach((i) => panes[i] && panes[i].setStretchFactor(1.2));

  // trades of the selected symbol: events sorted by bar, each pointing at its trade's tooltip text
  let sym = D.symbols[0];
  let events = [];   // {bar, time, price, kind: 0 entry | 1 exit, trade, liq: closed by liquidation}
  let liquidations = [];  // the liquidation exits: always marked (red squares), clustered or not
  let shown = { mode: "none", byTime: new Map(), byId: new Map() };
  const barOf = new Map(t.map((v, i) => [v, i]));

  function setSymbol(name) {
    sym = name;
    const c = D.candles[name];
    if (D.ohlc) {
      candle.setData(t.map((time, i) => (c.c[i] === null ? { time } :
        { time, open: c.o[i], high: c.h[i], low: c.l[i], close: c.c[i] })));
    } else {
      candle.setData(line(c.c));
    }
    volume.setData(c.v ? t.map((time, i) => (c.v[i] === null ? { time } : {
      time, value: c.v[i], color: c.c[i] >= c.o[i] ? "rgba(22,163,74,0.3)" : "rgba(220,38,38,0.3)" })) : []);
    const tr = D.trades[name] || { entry_t: [], exit_t: [], entry_p: [], exit_p: [], long: [], text: [] };
    events = [];
    liquidations = [];
    tr.entry_t.forEach((et, k) => {
      events.push({ bar: barOf.get(et), time: et, price: tr.entry_p[k], kind: 0, trade: k, long: tr.long[k] });
      if (tr.exit_t[k] !== null) {
        const e = { bar: barOf.get(tr.exit_t[k]), time: tr.exit_t[k], price: tr.exit_p[k], kind: 1, trade: k,
                    long: tr.long[k], liq: !!(tr.liq && tr.liq[k]) };
        events.push(e);
        if (e.liq) liquidations.push(e);
      }
    });
    events.sort((a, b) => a.bar - b.bar || a.kind - b.kind);
    updateMarkers();
  }

  function lowerBound(bar) {
    let lo = 0, hi = events.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (events[m].bar < bar) lo = m + 1; else hi = m; }
    return lo;
  }

  const liqMarker = (e) => ({ time: e.time, position: "atPriceMiddle", price: e.price, id: `1:${e.trade}`,
                              shape: "square", color: "#b91c1c", size: 1.2 });

  // every event when few are in view; otherwise one marker per cluster of bars, labelled with its count
  function updateMarkers() {
    const range = chart.timeScale().getVisibleLogicalRange() || { from: 0, to: t.length };
    const from = Math.max(0, Math.floor(range.from) - 2), to = Math.min(t.length - 1, Math.ceil(range.to) + 2);
    const a = lowerBound(from), b = lowerBound(to + 1);
    const byTime = new Map(), byId = new Map();
    const list = [];
    if (b - a <= MAX_MARKERS) {
      for (let k = a; k < b; k++) {
        const e = events[k];
        const up = (e.kind === 0) === e.long;
        list.push(e.liq ? liqMarker(e)
          : { time: e.time, position: "atPriceMiddle", price: e.price, id: `${e.kind}:${e.trade}`,
              shape: up ? "arrowUp" : "arrowDown", color: e.kind === 0 ? "#2563eb" : "#f59e0b", size: 1 });
        if (!byTime.has(e.time)) byTime.set(e.time, []);
        byTime.get(e.time).push(e);
        byId.set(`${e.kind}:${e.trade}`, e);
      }
      shown = { mode: "events", byTime, byId };
    } else {
      const width = Math.max(1, Math.ceil((to - from) / CLUSTERS));
      for (let k = a; k < b;) {
        const start = events[k].bar - ((events[k].bar - from) % width);
        let j = k;
        while (j < b && events[j].bar < start + width) j++;
        const first = events[k], last = events[j - 1];
        const cluster = { count: j - k, from: first.time, to: last.time };
        list.push({ time: first.time, position: "aboveBar", shape: "circle", color: "#64748b",
                    text: String(j - k), size: 0.6, id: `c:${first.time}` });
        byTime.set(first.time, cluster);
        byId.set(`c:${first.time}`, cluster);
        k = j;
      }
      // liquidations stay visible among the clusters (rare, and what a leveraged run is read for)
      for (let k = a; k < b; k++) {
        const e = events[k];
        if (!e.liq) continue;
        list.push(liqMarker(e));
        byId.set(`1:${e.trade}`, e);
      }
      list.sort((p, q) => p.time - q.time);
      shown = { mode: "clusters", byTime, byId };
    }
    markers.setMarkers(list);
  }
  let pending = false;
  chart.timeScale().subscribeVisibleLogicalRangeChange(() => {
    if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; updateMarkers(); }); }
  });

  const fmtTime = (s) => new Date(s * 1000).toISOString().slice(0, 16).replace("T", " ");
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));

  function describe(e) {
    if (e.count !== undefined) {
      const what = D.trades_cut ? `marked trade events (every ${D.trades_cut[0]}th trade)` : "trade events";
      return `<b>${e.count} ${what}</b><br>${fmtTime(e.from)} – ${fmtTime(e.to)}<br><i>zoom in to see each</i>`;
    }
    const what = e.kind === 0 ? "entry" : (e.liq ? "liquidation" : "exit");
    return `<b>${what}</b> · ${esc(D.trades[sym].text[e.trade])}`;
  }

  chart.subscribeCrosshairMove((p) => {
    tip.style.display = "none";
    if (!p.time || !p.point) { legend.textContent = ""; return; }
    const bar = p.seriesData.get(candle);
    if (bar) {
      let text = `${sym}  ${fmtTime(p.time)}  ` + (bar.open !== undefined
        ? `O ${num(bar.open)}  H ${num(bar.high)}  L ${num(bar.low)}  C ${num(bar.close)}` : num(bar.value));
      const paid = fundingSeries.map(([name, s]) => [name, p.seriesData.get(s)])
        .filter(([, v]) => v && v.value !== undefined);
      if (paid.length) text += "  ·  funding paid " + paid.map(([name, v]) => `${name} ${money(v.value)}`).join(", ");
      const m = marginSeries && p.seriesData.get(marginSeries);
      if (m && m.value !== undefined) text += `  ·  margin used ${pct(m.value)} of equity`;
      legend.textContent = text;
    }
    if (p.paneIndex !== 0) return;
    // the marker under the pointer (its id), else the events on the bar under the crosshair
    const id = p.hoveredInfo ? p.hoveredInfo.objectId : p.hoveredObjectId;
    let html;
    if (typeof id === "string" && shown.byId.has(id)) {
      html = describe(shown.byId.get(id));
    } else {
      const hit = shown.byTime.get(p.time);
      if (!hit) return;
      if (shown.mode === "clusters") {
        html = describe(hit);
      } else {
        const near = hit.filter((e) => Math.abs(candle.priceToCoordinate(e.price) - p.point.y) <= 14);
        if (!near.length) return;
        html = near.map(describe).join("<hr>");
      }
    }
    tip.innerHTML = html;
    tip.style.display = "block";
    const w = box.clientWidth;
    tip.style.left = Math.min(p.point.x + 16, w - tip.offsetWidth - 4) + "px";
    tip.style.top = Math.max(p.point.y - 10, 0) + "px";
  });

  if (select) select.addEventListener("change", () => setSymbol(select.value));
  setSymbol(sym);
  chart.timeScale().fitContent();
  // for tests and the console: the chart, the price series and the events of the selected symbol
  window.nbtradeReport = { chart, candle, events: () => events, liquidations: () => liquidations,
                           mode: () => shown.mode, setSymbol };
})();
