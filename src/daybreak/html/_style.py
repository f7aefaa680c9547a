"""The page's style sheet: inline, so that the report is one file."""

_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--faint:#818b98;--line:#d1d9e0;--soft:#eef1f4;
--bg:#f6f8fa;--card:#fff;--accent:#0969da;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;
--mono:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,"DejaVu Sans Mono","Liberation Mono",monospace}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue","Noto Sans","Liberation Sans",Arial,sans-serif;-webkit-font-smoothing:antialiased}
main{max-width:1200px;margin:0 auto;padding:28px 24px 40px}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
h1{font-size:26px;line-height:1.2;margin:0;font-weight:650;letter-spacing:-.01em;word-break:break-word}
h2{font-size:17px;margin:0;font-weight:620}
h3{font-size:14px;margin:18px 0 8px;font-weight:620}
code,.mono{font-family:var(--mono);font-size:12.5px}
.muted{color:var(--muted)}
.faint{color:var(--faint)}
header.page{display:flex;flex-wrap:wrap;align-items:flex-end;justify-content:space-between;gap:12px;
margin-bottom:18px}
header.page .kicker{font-size:12px;text-transform:uppercase;letter-spacing:.08em;color:var(--muted);
font-weight:600;margin-bottom:4px}
header.page .title{display:flex;align-items:center;gap:12px;flex-wrap:wrap}
nav.toc{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:13px}
section,.card{background:var(--card);border:1px solid var(--line);border-radius:10px;
padding:18px 22px 20px;margin:0 0 18px}
.section-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:8px 14px;margin-bottom:12px}
.section-head .note{font-size:13px;color:var(--muted)}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;
line-height:18px;border:1px solid transparent;white-space:nowrap;vertical-align:middle}
.badge.big{font-size:14px;padding:3px 14px;line-height:20px}
.badge.ok{background:#dafbe1;color:#116329;border-color:#aceebb}
.badge.bad{background:#ffebe9;color:#a40e26;border-color:#ffcecb}
.badge.warn{background:#fff8c5;color:#7d4e00;border-color:#f5e0a0}
.badge.info{background:#ddf4ff;color:#0550ae;border-color:#b6e3ff}
.badge.muted{background:#eef1f4;color:#59636e;border-color:#d1d9e0}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(124px,1fr));gap:10px;margin:0}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fbfcfd;min-width:0}
.tile .k{font-size:11px;white-space:nowrap;color:var(--muted);font-weight:600;
text-transform:uppercase;letter-spacing:.04em}
.tile .v{font-size:22px;font-weight:650;line-height:1.3;font-variant-numeric:tabular-nums}
.tile .d{font-size:12px;color:var(--muted);line-height:1.4}
.verdict.ok{color:#1a7f37}.verdict.bad{color:#cf222e}
.verdict.warn{color:#9a6700}.verdict.muted{color:#59636e}
.tile.bad{border-color:#ffcecb;background:#fff8f7}
.tile.warn{border-color:#f5e0a0;background:#fffdf0}
.path{margin:14px 0 0;font-size:13px;color:var(--muted);line-height:1.9}
.path .step{display:inline-block;font-family:var(--mono);font-size:12px;color:var(--fg);
background:var(--soft);border-radius:4px;padding:0 6px}
.path .arrow{color:var(--faint);margin:0 3px}
.alert{border-radius:8px;padding:10px 14px;margin:0 0 14px;border:1px solid #ffcecb;background:#fff8f7}
.alert ul{margin:4px 0 0;padding-left:20px}
.alert.note{border-color:#b6e3ff;background:#f3f9ff}
header.page .sub{color:var(--muted);margin-top:4px}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;font-size:12.5px;color:var(--muted);margin:0 0 10px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.sw{display:inline-block;width:18px;height:10px;border-radius:3px;border:1.5px solid transparent}
.sw.ok{background:#4ac26b;border-color:#2da44e}
.sw.bad{background:#ff7b72;border-color:#cf222e}
.sw.warn{background:#eac54f;border-color:#bf8700}
.sw.muted{background:#d1d9e0;border-color:#8c959f}
.sw.info{background:#80ccff;border-color:#218bff}
.sw.opt{background:#fff;border:1.5px dashed #57606a}
.sw.cp{background:#fff;border:2.5px solid #1f2328}
.sw.line{height:0;border:0;border-top:2px solid #0969da;border-radius:0}
.sw.line.l2{border-top-color:#bf3989}.sw.line.l3{border-top-color:#1a7f37}.sw.line.l4{border-top-color:#bc4c00}
.chart-wrap{overflow-x:auto}
svg.chart{display:block;max-width:100%;height:auto}
svg text{font-family:inherit;fill:var(--fg)}
svg .axis text,svg text.axis{fill:#59636e;font-size:11px;font-variant-numeric:tabular-nums}
svg .grid{stroke:#eaeef2;stroke-width:1}
svg .grid.major{stroke:#d8dee4}
svg .band{fill:#f6f8fa}
svg .band.alt{fill:#fff}
svg .phase-name{font-weight:700;fill:#59636e;letter-spacing:.06em}
svg .phase-meta{fill:#59636e}
svg .phase-span{opacity:.55}
svg .lbl{fill:#1f2328}
svg .lbl.cp{font-weight:700}
svg .lbl.bad{fill:#a40e26}
svg .lbl.muted{fill:#6e7781}
svg .val{fill:#59636e;font-variant-numeric:tabular-nums}
svg .val.bad{fill:#a40e26}
svg .hit{fill:transparent}
svg .bar:hover .hit,svg .node:hover .box{fill:#ddf4ff}
svg rect.ok{fill:#4ac26b;stroke:#2da44e}
svg rect.bad{fill:#ff7b72;stroke:#cf222e}
svg rect.warn{fill:#eac54f;stroke:#bf8700}
svg rect.muted{fill:#d1d9e0;stroke:#8c959f}
svg rect.info{fill:#80ccff;stroke:#218bff}
svg rect.ghost{fill:#fff;stroke-dasharray:3 2}
svg rect.opt{stroke-dasharray:4 2.5;fill-opacity:.72}
svg rect.cp{stroke:#1f2328;stroke-width:2.5}
svg .cp-link{fill:none;stroke:#1f2328;stroke-width:1.2;stroke-dasharray:2 3;opacity:.7}
svg .ready{stroke:#0969da;stroke-width:1.5;stroke-dasharray:5 4}
svg text.ready-lbl{fill:#0969da;font-size:11px;font-weight:600}
svg .ready.failed{stroke:#cf222e}svg text.ready-lbl.failed{fill:#cf222e}
svg .node .box{fill:#fff;stroke:#afb8c1;stroke-width:1.2}
svg .node.ok .box{fill:#f3fcf5;stroke:#8fd5a2}
svg .node.bad .box{fill:#fff5f4;stroke:#ff9f97}
svg .node.warn .box{fill:#fffbe6;stroke:#e6c65c}
svg .node.muted .box{fill:#f6f8fa;stroke:#afb8c1}
svg .node.info .box{fill:#f0f8ff;stroke:#80ccff}
svg .node.opt .box{stroke-dasharray:4 3}
svg .node.cp .box{stroke:#1f2328;stroke-width:2.2}
svg .node .name{font-weight:600}
svg .node .sub{fill:#59636e}
svg .edge path{fill:none;stroke:#afb8c1;stroke-width:1.2}
svg .edge.cp path{stroke:#1f2328;stroke-width:2.4}
svg .edge.barrier path{stroke:#8250df;stroke-dasharray:2 4;stroke-linecap:round}
.sw.line.barrier{border-top:2px dotted #8250df}
svg .edge:hover path{stroke:#0969da}
svg .arrowhead{fill:#afb8c1}
svg .arrowhead.cp{fill:#1f2328}
svg .col-head{fill:#818b98;font-size:11px;font-weight:600;letter-spacing:.05em}
svg .series{fill:none;stroke-width:2}
svg .series.s1{stroke:#0969da}svg .dot.s1{fill:#0969da}
svg .series.s2{stroke:#bf3989}svg .dot.s2{fill:#bf3989}
svg .series.s3{stroke:#1a7f37}svg .dot.s3{fill:#1a7f37}
svg .series.s4{stroke:#bc4c00}svg .dot.s4{fill:#bc4c00}
svg .warmup{fill:#f6f8fa}
svg text.chart-title{font-size:12px;font-weight:600;fill:#59636e}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;font-weight:600;color:var(--muted);font-size:12px;border-bottom:1px solid var(--line);
padding:6px 10px;white-space:nowrap}
td{border-bottom:1px solid #eaeef2;padding:6px 10px;vertical-align:top;overflow-wrap:break-word}
td code,td .emsg{overflow-wrap:anywhere}
td code.type{overflow-wrap:normal;white-space:nowrap}
.table-wrap{overflow-x:auto;max-width:100%}
td.nowrap{white-space:nowrap}
tr:last-child td{border-bottom:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;width:1%}
td.name{font-weight:600;white-space:nowrap}
.hbar{height:8px;border-radius:4px;background:#54aeff;min-width:2px}
.hbar-cell{width:38%}
.failure{border:1px solid #ffcecb;border-left:4px solid #cf222e;border-radius:8px;padding:12px 16px;
margin:0 0 12px;background:#fffbfa}
.failure.warn{border-color:#f5e0a0;border-left-color:#bf8700;background:#fffdf3}
.failure .head{display:flex;flex-wrap:wrap;align-items:center;gap:6px 10px}
.failure .head strong{font-size:15px}
.failure .meta{font-size:12.5px;color:var(--muted)}
.failure p{margin:6px 0 0}
.etype{color:#a40e26;font-weight:600}
.emsg{overflow-wrap:anywhere}
.at{color:var(--muted);font-size:12.5px;white-space:nowrap}
details{margin:8px 0 0}
details details{margin:4px 0 0 14px}
summary{cursor:pointer;font-size:13px;color:#3d444d;font-weight:600}
summary .muted{font-weight:400}
ol.frames{margin:6px 0 0;padding:6px 0 6px 34px;background:#f6f8fa;border-radius:6px;font-size:12px}
ol.frames li{padding:1px 8px 1px 0;font-family:var(--mono);font-size:12px;overflow-wrap:anywhere}
ol.frames li.lib{color:#818b98}
ol.frames li.hot{background:#fff1b8;color:#1f2328;font-weight:700;border-radius:3px}
ol.frames .fn{color:#8250df}
ol.frames li.lib .fn{color:#a08ad8}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:16px}
.empty{color:var(--muted);font-size:13px;margin:0}
ul.cycles{margin:0;padding-left:20px;font-size:13px}
footer{color:var(--faint);font-size:12px;text-align:center;margin-top:8px}
@media print{html{background:#fff}section,.card{break-inside:avoid;border-color:#ccc}}
"""


