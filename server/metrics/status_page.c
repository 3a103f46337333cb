/*
 * status_page.c — the status page (GET / on the metrics port): one
 * self-contained HTML document, its CSS and script inline, that polls
 * /status.json every 1.5 s and renders the nodes (up or down), the
 * partitions and their leaders, the recent leader changes and sparklines
 * of requests/s and p99 latency (status_json.h). It loads nothing else:
 * no URL of another host appears in it (test_status_page checks), so it
 * works on a machine with no network. The SVG is written as HTML (no
 * namespace URL is needed inside an HTML document).
 *
 * Kept in pieces below 4095 bytes, the longest string literal C
 * compilers must accept; status_page_html joins them once.
 */
#include "status_page.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const parts[] = {
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<title>orderkv status</title>\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<style>\n"
    "body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; background: #fafafa; }\n"
    "h1 { font-size: 1.4em; margin: 0 0 .2em; }\n"
    "h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }\n"
    "table { border-collapse: collapse; background: #fff; }\n"
    "th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }\n"
    "th { background: #eee; }\n"
    "td.n { text-align: right; font-variant-numeric: tabular-nums; }\n"
    ".up { color: #17661f; font-weight: bold; }\n"
    ".down { color: #b00020; font-weight: bold; }\n"
    ".leader { font-weight: bold; }\n"
    "#err { color: #b00020; }\n"
    "#meta { color: #555; }\n"
    "svg { background: #fff; border: 1px solid #ddd; }\n"
    "</style>\n"
    "</head>\n"
    "<body>\n"
    "<h1>orderkv node <span id=\"self\">?</span></h1>\n"
    "<div id=\"meta\">loading /status.json ...</div>\n"
    "<div id=\"err\"></div>\n"
    "<h2>Nodes</h2>\n"
    "<table><thead><tr><th>node</th><th>address</th><th>state</th><th>stream</th><th>last heard</th></tr></thead>\n"
    "<tbody id=\"nodes\"></tbody></table>\n"
    "<h2>Throughput and latency (this node, last minutes)</h2>\n"
    "<div id=\"rate\"></div>\n"
    "<div id=\"spark\"></div>\n"
    "<h2>Partitions</h2>\n"
    "<table><thead><tr><th>table</th><th>partition</th><th>leader</th><th>role here</th><th>term</th>\n"
    "<th>commit</th><th>applied</th><th>replica lag (entries)</th></tr></thead>\n"
    "<tbody id=\"parts\"></tbody></table>\n"
    "<h2>Recent leader changes (seen by this node)</h2>\n"
    "<table><thead><tr><th>time</th><th>table</th><th>partition</th><th>new leader</th><th>term</th></tr></thead>\n"
    "<tbody id=\"changes\"></tbody></table>\n"
    "<script>\n"
    "\"use strict\";\n"
    "var POLL_MS = 1500, STEP_S = 2;\n"
    "function esc(s) {\n"
    "  return String(s).replace(/[&<>\"']/g, function (c) {\n"
    "    return { \"&\": \"&amp;\", \"<\": \"&lt;\", \">\": \"&gt;\", '\"': \"&quot;\", \"'\": \"&#39;\" }[c];\n"
    "  });\n"
    "}\n"
    "function ago(ms) {\n"
    "  if (ms === null || ms === undefined) return \"never\";\n"
    "  if (ms < 1000) return ms + \" ms ago\";\n"
    "  return (ms / 1000).toFixed(1) + \" s ago\";\n"
    "}\n"
    "function fmt(v, d) { return v === null || v === undefined ? \"-\" : v.toFixed(d); }\n"
    "function time(ms) { return new Date(ms).toLocaleTimeString(); }\n"
    "function spark(samples, field, label, unit) {\n"
    "  var w = 600, h = 60, pts = [], max = 0, i;\n"
    "  for (i = 0; i < samples.length; i++) {\n"
    "    var v = samples[i][field];\n"
    "    if (v !== null && v > max) max = v;\n"
    "  }\n"
    "  for (i = 0; i < samples.length; i++) {\n"
    "    var y = samples[i][field];\n"
    "    if (y === null) y = 0;\n"
    "    var x = samples.length > 1 ? i * w / (samples.length - 1) : 0;\n"
    "    pts.push(x.toFixed(1) + \",\" + (h - 2 - (max > 0 ? y * (h - 4) / max : 0)).toFixed(1));\n"
    "  }\n"
    "  return \"<div>\" + esc(label) + \" (max \" + fmt(max, 1) + \" \" + unit + \")</div>\" +\n"
    "    \"<svg width=\\\"\" + w + \"\\\" height=\\\"\" + h + \"\\\" viewBox=\\\"0 0 \" + w + \" \" + h + \"\\\">\" +\n"
    "    \"<polyline fill=\\\"none\\\" stroke=\\\"#2b6cb0\\\" stroke-width=\\\"1.5\\\" points=\\\"\" + pts.join(\" \") +\n"
    "    \"\\\"/></svg>\";\n"
    "}\n"
    "function render(s) {\n"
    "  var i, j, rows = [];\n",
    "  document.getElementById(\"self\").textContent = s.node.id + \" (\" + s.node.address + \")\";\n"
    "  document.getElementById(\"meta\").textContent = \"orderkvd \" + s.node.version + \", \" +\n"
    "    s.node.mode + \" mode, up \" + fmt(s.node.uptime_s, 0) + \" s; updated \" +\n"
    "    time(s.node.now_ms) + \", every \" + POLL_MS / 1000 + \" s\";\n"
    "  for (i = 0; i < s.nodes.length; i++) {\n"
    "    var n = s.nodes[i], st = n.up ? \"up\" : \"down\";\n"
    "    rows.push(\"<tr id=\\\"node-\" + n.id + \"\\\" data-node=\\\"\" + n.id + \"\\\" data-state=\\\"\" + st +\n"
    "      \"\\\"><td>\" + n.id + (n.self ? \" (this node)\" : \"\") + \"</td><td>\" + esc(n.address) +\n"
    "      \"</td><td class=\\\"\" + st + \"\\\">\" + st + \"</td><td>\" +\n"
    "      (n.self ? \"-\" : n.connected ? \"connected\" : \"not connected\") + \"</td><td>\" +\n"
    "      (n.self ? \"-\" : ago(n.heard_ms_ago)) + \"</td></tr>\");\n"
    "  }\n"
    "  document.getElementById(\"nodes\").innerHTML = rows.join(\"\");\n"
    "  rows = [];\n"
    "  for (i = 0; i < s.partitions.length; i++) {\n"
    "    var p = s.partitions[i], lag = [];\n"
    "    for (j = 0; j < p.replicas.length; j++)\n"
    "      lag.push(\"node \" + p.replicas[j].node + \": \" + p.replicas[j].lag);\n"
    "    rows.push(\"<tr><td>\" + esc(p.table) + \"</td><td class=\\\"n\\\">\" + p.partition +\n"
    "      \"</td><td class=\\\"n\\\">\" + (p.leader === null ? \"none\" : p.leader) + \"</td><td\" +\n"
    "      (p.role === \"leader\" ? \" class=\\\"leader\\\"\" : \"\") + \">\" + esc(p.role) +\n"
    "      \"</td><td class=\\\"n\\\">\" + p.term + \"</td><td class=\\\"n\\\">\" + p.commit +\n"
    "      \"</td><td class=\\\"n\\\">\" + p.applied + \"</td><td>\" + esc(lag.join(\", \")) + \"</td></tr>\");\n"
    "  }\n"
    "  document.getElementById(\"parts\").innerHTML = rows.join(\"\");\n"
    "  rows = [];\n"
    "  for (i = 0; i < s.leader_changes.length; i++) {\n"
    "    var c = s.leader_changes[i];\n"
    "    rows.push(\"<tr><td>\" + time(c.at_ms) + \"</td><td>\" + esc(c.table) + \"</td><td class=\\\"n\\\">\" +\n"
    "      c.partition + \"</td><td class=\\\"n\\\">\" + c.leader + \"</td><td class=\\\"n\\\">\" + c.term +\n"
    "      \"</td></tr>\");\n"
    "  }\n"
    "  document.getElementById(\"changes\").innerHTML = rows.join(\"\");\n"
    "  var last = s.samples.length ? s.samples[s.samples.length - 1] : null;\n"
    "  document.getElementById(\"rate\").textContent = last ?\n"
    "    \"last \" + STEP_S + \" s: \" + fmt(last.rps, 1) +\n"
    "    \" requests/s, p50 \" + fmt(last.p50_ms, 2) + \" ms, p99 \" + fmt(last.p99_ms, 2) + \" ms\" :\n"
    "    \"no sample yet\";\n"
    "  document.getElementById(\"spark\").innerHTML =\n"
    "    spark(s.samples, \"rps\", \"requests/s\", \"/s\") + spark(s.samples, \"p99_ms\", \"p99 latency\", \"ms\");\n"
    "}\n"
    "function refresh() {\n"
    "  var x = new XMLHttpRequest();\n"
    "  x.open(\"GET\", \"/status.json\", true);\n"
    "  x.timeout = 3000;\n"
    "  x.onload = function () {\n"
    "    if (x.status !== 200) { fail(\"status.json: HTTP \" + x.status); return; }\n"
    "    try { render(JSON.parse(x.responseText)); document.getElementById(\"err\").textContent = \"\"; }\n"
    "    catch (e) { fail(\"status.json: \" + e); }\n"
    "  };\n"
    "  x.onerror = function () { fail(\"this node does not answer\"); };\n"
    "  x.ontimeout = x.onerror;\n"
    "  x.send();\n"
    "}\n"
    "function fail(msg) {\n"
    "  document.getElementById(\"err\").textContent = msg + \" (\" + new Date().toLocaleTimeString() + \")\";\n"
    "}\n"
    "refresh();\n",
    "setInterval(refresh, POLL_MS);\n"
    "</script>\n"
    "</body>\n"
    "</html>\n",
};

static char *page;
static size_t page_len;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void join(void)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        n += strlen(parts[i]);
    char *p = malloc(n + 1);
    if (!p)
        return;
    size_t off = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t l = strlen(parts[i]);
        memcpy(p + off, parts[i], l);
        off += l;
    }
    p[off] = '\0';
    page = p;
    page_len = off;
}

const char *status_page_html(size_t *len)
{
    pthread_once(&once, join);
    if (len)
        *len = page_len;
    return page;
}
