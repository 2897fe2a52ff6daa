// nbtrade heat map: a sweep's metric over two parameters, drawn on a canvas with a tooltip per cell.
// Part of the report's own JS layer (lightweight-charts has no heat-map series). Data come from the
// <script type="application/json" class="nbtrade-heatmap-data"> block written by
// nbtrade/report/heatmap.py; every text shown was formatted in Python by nbtrade.format.
// Without scripts the page shows the same cells as a shaded table (<noscript>).
(function () {
  "use strict";
  const PAD = { left: 80, right: 16, top: 10, bottom: 64 };
  const LEGEND = 14;   // height of the colour scale under the x labels
  const shade = (f) => `rgb(${Math.round(255 * (1 - f))},${Math.round(200 * f + 55)},90)`;
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  const maps = [];

  function draw(root) {
    const D = JSON.parse(root.querySelector(".nbtrade-heatmap-data").textContent);
    const box = root.querySelector(".hm-box");
    const canvas = root.querySelector("canvas");
    const tip = root.querySelector(".hm-tooltip");
    box.style.display = "block";
    const nx = D.xs.length, ny = D.ys.length;
    const width = Math.max(320, box.clientWidth);
    const cell = Math.max(18, Math.min(64, Math.floor((width - PAD.left - PAD.right) / Math.max(nx, 1))));
    const cw = cell, ch = Math.max(18, Math.min(40, cell));
    const W = PAD.left + cw * nx + PAD.right, H = PAD.top + ch * ny + PAD.bottom + LEGEND;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
    canvas.style.width = W + "px";
    canvas.style.height = H + "px";
    const g = canvas.getContext("2d");
    g.scale(dpr, dpr);
    g.font = "11px system-ui, sans-serif";
    g.textBaseline = "middle";
    // cells: row 0 of the data is the top row
    for (let r = 0; r < ny; r++) {
      for (let c = 0; c < nx; c++) {
        const f = D.shade[r][c];
        const x = PAD.left + c * cw, y = PAD.top + r * ch;
        g.fillStyle = f === null ? "#f1f5f9" : shade(f);
        g.fillRect(x, y, cw - 1, ch - 1);
        if (f !== null && cw >= 44) {
          g.fillStyle = "#0f172a";
          g.textAlign = "center";
          g.fillText(D.text[r][c], x + cw / 2, y + ch / 2, cw - 4);
        }
      }
    }
    // axes: y labels left of the rows, x labels under the columns (rotated when narrow)
    g.fillStyle = "#64748b";
    g.textAlign = "right";
    D.ys.forEach((s, r) => g.fillText(s, PAD.left - 6, PAD.top + r * ch + ch / 2, PAD.left - 10));
    const bottom = PAD.top + ch * ny;
    D.xs.forEach((s, c) => {
      const x = PAD.left + c * cw + cw / 2;
      if (cw >= 44) {
        g.textAlign = "center";
        g.fillText(s, x, bottom + 10, cw - 2);
      } else {
        g.save();
        g.translate(x, bottom + 6);
        g.rotate(-Math.PI / 3);
        g.textAlign = "right";
        g.fillText(s, 0, 0);
        g.restore();
      }
    });
    g.fillStyle = "#0f172a";
    g.textAlign = "center";
    g.fillText(D.x, PAD.left + (cw * nx) / 2, bottom + 40);
    g.save();
    g.translate(12, PAD.top + (ch * ny) / 2);
    g.rotate(-Math.PI / 2);
    g.fillText(D.y, 0, 0);
    g.restore();
    // colour scale: worst (red) to best (green), end labels formatted in Python
    const ly = bottom + PAD.bottom - 8, lw = Math.min(220, cw * nx);
    const grad = g.createLinearGradient(PAD.left, 0, PAD.left + lw, 0);
    grad.addColorStop(0, shade(0));
    grad.addColorStop(1, shade(1));
    g.fillStyle = grad;
    g.fillRect(PAD.left, ly, lw, 8);
    g.fillStyle = "#64748b";
    g.textAlign = "right";
    g.fillText(D.lo, PAD.left - 4, ly + 4);
    g.textAlign = "left";
    g.fillText(D.hi, PAD.left + lw + 4, ly + 4);

    function cellAt(ev) {
      const rect = canvas.getBoundingClientRect();
      const c = Math.floor((ev.clientX - rect.left - PAD.left) / cw);
      const r = Math.floor((ev.clientY - rect.top - PAD.top) / ch);
      return c >= 0 && c < nx && r >= 0 && r < ny ? [r, c] : null;
    }
    canvas.addEventListener("mousemove", (ev) => {
      const hit = cellAt(ev);
      if (!hit) { tip.style.display = "none"; return; }
      const [r, c] = hit;
      tip.innerHTML = `${esc(D.x)} <b>${esc(D.xs[c])}</b> · ${esc(D.y)} <b>${esc(D.ys[r])}</b><br>` +
        `${esc(D.metric)} <b>${esc(D.text[r][c])}</b>` + (D.agg ? `<br><i>${esc(D.agg)}</i>` : "");
      tip.style.display = "block";
      const rrect = root.getBoundingClientRect();  // the tooltip sits outside the scrolling box
      const left = ev.clientX - rrect.left + 14;
      tip.style.left = Math.max(0, Math.min(left, root.clientWidth - tip.offsetWidth - 4)) + "px";
      tip.style.top = Math.max(ev.clientY - rrect.top - 10, 0) + "px";
    });
    canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    // for tests and the console: a cell's centre in page pixels
    maps.push({ data: D, canvas,
                cellCenter: (r, c) => { const rect = canvas.getBoundingClientRect();
                                        return [rect.left + PAD.left + c * cw + cw / 2, rect.top + PAD.top + r * ch + ch / 2]; } });
  }

  document.querySelectorAll(".nbtrade-heatmap").forEach(draw);
  window.nbtradeHeatmaps = maps;
})();
