// The operator console at GET /console: one self-contained HTML page (no CDN, no external font,
// no build step; works offline). The server renders it with the current state embedded, and the
// page re-fetches GET /v1/console/state every two seconds. Every value from the state is put into
// the page as text (textContent / escaped), never as markup. The CSP (admin.ts) allows inline
// script and style only, and connections to this service only.

export function consolePage(state: unknown, tokenSet: boolean): string {
  const json = JSON.stringify(state).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Verdict console</title>
<style>
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#6b7280;--line:#e3e6eb;--allow:#4c9a6a;--tag:#8a7fd1;--challenge:#d99a2b;--block:#d0473b}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
header{display:flex;gap:16px;align-items:baseline;padding:12px 20px;background:#1d2330;color:#fff}header h1{font-size:18px;margin:0}header span{color:#c9cfda}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:14px;padding:14px 20px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;min-width:0}section.wide{grid-column:1/-1}
h2{font-size:14px;margin:0 0 8px;color:var(--mute);text-transform:uppercase;letter-spacing:.04em}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line);vertical-align:top}th{color:var(--mute);font-weight:600}
.pill{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px;font-weight:600}
.ALLOW{background:var(--allow)}.TAG{background:var(--tag)}.CHALLENGE{background:var(--challenge)}.BLOCK{background:var(--block)}
.big{font-size:26px;font-weight:700}.mute{color:var(--mute)}.ok{color:var(--allow);font-weight:600}.bad{color:var(--block);font-weight:600}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.bar{height:10px;background:var(--block);border-radius:3px}
form{display:flex;flex-wrap:wrap;gap:6px;align-items:center}input,select,button{font:inherit;padding:4px 6px;border:1px solid var(--line);border-radius:5px}button{background:#1d2330;color:#fff;cursor:pointer}
.kv{display:grid;grid-template-columns:auto 1fr;gap:2px 12px}.legend span{margin-right:10px}
#explain{white-space:normal}
</style></head>
<body>
<header><h1>Verdict console</h1><span id="meta"></span><span id="clock" class="mute"></span></header>
<main>
<section class="wide"><h2>Decisions per second (last 5 minutes)</h2><div class="legend" id="legend"></div><svg id="chart" width="100%" height="160" viewBox="0 0 800 160" preserveAspectRatio="none" role="img" aria-label="decisions per second by action"></svg></section>
<section><h2>Health</h2><div class="kv" id="health"></div></section>
<section><h2>Top reasons (5 min)</h2><table id="reasons"></table></section>
<section class="wide"><h2>Gateways</h2><table id="gateways"></table><p class="mute" id="gwnote"></p></section>
<section class="wide"><h2>Look up a request</h2><form id="lookup"><input id="rid" name="request_id" placeholder="request id from the 403 page" size="40"><button type="submit">Explain</button></form><div id="explain"></div></section>
<section class="wide"><h2>Recent stops</h2><table id="stops"></table></section>
<section class="wide"><h2>Overrides</h2>
<form id="override"><select id="oaction" name="action"><option value="allow">allow</option><option value="block">block</option></select>
<input id="okey" name="key" placeholder="ip:203.0.113.7 · subnet:… · session:… · identifier:…" size="44">
<label><input type="checkbox" id="ohashed"> identifier is a hash</label>
<input id="ottl" name="ttl_s" type="number" value="3600" min="1" size="7" title="seconds">s
<input id="onote" name="note" placeholder="why (ticket, customer)" size="24"><input id="oby" name="by" placeholder="your name" size="12">
${tokenSet ? '<input id="otoken" type="password" placeholder="admin token" size="16">' : ''}
<button type="submit" id="osubmit">Apply</button><span id="ostatus" class="mute"></span></form>
<table id="overrides"></table><h2 style="margin-top:10px">Override log</h2><table id="olog"></table></section>
<section class="wide"><h2>Exposure: what responses give away</h2><table id="exposure"></table><p class="mute" id="exnote"></p></section>
<section class="wide"><h2>API inventory</h2><table id="inventory"></table></section>
<section><h2>Policy</h2><div id="policy"></div><table id="phistory"></table></section>
</main>
<script type="application/json" id="state">${json}</script>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const ACTIONS = ["ALLOW","TAG","CHALLENGE","BLOCK"];
const COLORS = {ALLOW:"#4c9a6a",TAG:"#8a7fd1",CHALLENGE:"#d99a2b",BLOCK:"#d0473b"};
function el(tag, attrs, ...kids){const e=document.createElement(tag);for(const [k,v] of Object.entries(attrs||{})){if(k==="class")e.className=v;else if(k.startsWith("on"))e.addEventListener(k.slice(2),v);else e.setAttribute(k,v);}for(const c of kids){if(c==null)continue;e.append(c instanceof Node?c:String(c));}return e;}
function rows(table, head, items, cells){table.replaceChildren(el("tr",{},...head.map(h=>el("th",{},h))),...items.map(it=>el("tr",{},...cells(it).map(c=>el("td",{},c)))));}
function pill(a){return el("span",{class:"pill "+a},a);}
function flagText(f){const i=f.indexOf(":");const k=i<0?"":f.slice(i+1);return f.startsWith("unmasked:")?"returns unmasked "+k:f.startsWith("masked_inconsistently:")?"masked inconsistently: "+k:f==="more_records_than_requested"?"returns more records than requested":f;}
function ago(ms){const s=Math.max(0,Math.round((Date.now()-ms)/1000));return s<60?s+" s ago":s<3600?Math.round(s/60)+" min ago":Math.round(s/3600)+" h ago";}
function time(ms){return new Date(ms).toLocaleTimeString();}
function token(){const t=$("otoken");if(t&&t.value)sessionStorage.setItem("verdict-admin-token",t.value);return sessionStorage.getItem("verdict-admin-token")||"";}
function headers(extra){const h=Object.assign({},extra||{});const t=token();if(t)h.authorization="Bearer "+t;return h;}
function chart(s){const svg=$("chart");const W=800,H=160;svg.replaceChildren();const n=s.t.length;let max=1;for(const a of ACTIONS)for(const v of s.rates[a]||[])max=Math.max(max,v);
 for(let i=0;i<=4;i++){const y=H-(i/4)*(H-16);svg.append(el("line",{x1:0,x2:W,y1:y,y2:y,stroke:"#e3e6eb"}));}
 for(const a of ACTIONS){const v=s.rates[a]||[];if(v.length<2)continue;const pts=v.map((x,i)=>((i/(Math.max(1,n-1)))*W).toFixed(1)+","+(H-(x/max)*(H-16)).toFixed(1)).join(" ");
  const p=document.createElementNS("http://www.w3.org/2000/svg","polyline");p.setAttribute("points",pts);p.setAttribute("fill","none");p.setAttribute("stroke",COLORS[a]);p.setAttribute("stroke-width","2");svg.append(p);}
 const t=document.createElementNS("http://www.w3.org/2000/svg","text");t.setAttribute("x","4");t.setAttribute("y","12");t.setAttribute("font-size","11");t.setAttribute("fill","#6b7280");t.textContent="max "+max.toFixed(1)+"/s";svg.append(t);
 const last=(a)=>{const v=s.rates[a]||[];return v.length?v[v.length-1]:0;};
 $("legend").replaceChildren(...ACTIONS.map(a=>el("span",{},pill(a)," "+last(a).toFixed(1)+"/s")));}
function explain(r){const box=el("div",{});
 box.append(el("p",{},pill(r.action)," ",el("b",{},r.method+" "+r.path)," route ",el("code",{},r.route||"?")," (",r.route_class,") · score ",String(r.score),r.thresholds?" (tag "+r.thresholds.tag+", challenge "+r.thresholds.challenge+", block "+r.thresholds.block+")":""," · source ",el("b",{},r.source)," · ",time(r.ts)," · policy ",r.policy_version));
 if(r.override)box.append(el("p",{},"Set by operator override ",el("code",{},r.override)," (the engine would have answered ",pill(r.would_action),")"));
 if(r.cached_from)box.append(el("p",{},"Enforced from the gateway's cache; decided by request ",el("code",{},r.cached_from)));
 const ev=r.evidence||[];rows(box.appendChild(el("table",{})),["reason","strength","on key","evidence","cached as"],ev,(e)=>[el("code",{},(e.monitor?"dry_run:":"")+e.code),el("div",{},el("div",{class:"bar",style:"width:"+Math.min(100,e.strength)+"%"}),String(e.strength)),el("code",{},e.key),e.count===undefined?"":(e.count+(e.of===undefined?"":" of "+e.of)+" (acts from "+e.threshold+")"),e.cache||""]);
 if(!ev.length)box.append(el("p",{class:"mute"},"reasons: "+(r.reasons||[]).join(", ")));
 const k=r.keys||{};box.append(el("p",{},"keys: ",...Object.entries(k).map(([t,v])=>el("span",{},el("code",{},t+":"+v)," ",el("button",{type:"button",onclick:()=>prefill(t+":"+v,t==="identifier")},"allow"),"  "))));
 if(r.cache_key)box.append(el("p",{},"cached at gateways as ",el("code",{},r.cache_key),r.cache_ttl_s?" for "+r.cache_ttl_s+" s":""));
 return box;}
function prefill(key,hashed){$("okey").value=key;$("oaction").value="allow";$("ohashed").checked=!!hashed;$("okey").scrollIntoView({block:"center"});$("onote").focus();}
async function lookup(id){$("explain").replaceChildren(el("p",{class:"mute"},"looking up…"));
 const res=await fetch("/v1/audit?request_id="+encodeURIComponent(id),{headers:headers()});const body=await res.json();
 $("explain").replaceChildren(res.ok?explain(body):el("p",{class:"bad"},(body.error&&body.error.message)||res.status));}
function render(s){
 $("meta").textContent="instance "+s.instance+" · policy "+s.policy_version;$("clock").textContent="updated "+time(s.now);
 chart(s.series);
 const h=$("health");h.replaceChildren();const kv=(k,v)=>{h.append(el("div",{class:"mute"},k),el("div",{},v));};
 kv("decide latency",s.latency.count?("p50 ≤ "+s.latency.p50_ms+" ms · p99 ≤ "+(s.latency.p99_ms<0?"> 50":s.latency.p99_ms)+" ms ("+s.latency.count+" decisions)"):"no decisions yet");
 kv("state store",s.redis?el("span",{class:s.redis.connected?"ok":"bad"},s.redis.connected?"Redis connected":"Redis DOWN: deciding on local state"):"embedded (in memory)");
 if(s.redis)kv("Redis lag",s.redis.lag_ms+" ms · "+s.redis.pending_keys+" keys pending");
 kv("overrides in force",String(s.overrides.length));
 rows($("reasons"),["reason","count"],s.top_reasons,(r)=>[el("code",{},r.reason),String(r.count)]);
 rows($("gateways"),["gateway","last report","fail-open (by cause)","breaker","cache hits","calls"],s.gateways,(g)=>{const c=g.counters;const fo=Object.entries(c).filter(([k])=>k.startsWith("fail_open_total")).map(([k,v])=>k.replace(/^fail_open_total\\{cause="(.*)"\\}$/,"$1")+" "+v).join(", ")||"0";
  const b=c.breaker_state;return[g.gateway,ago(g.last_seen),fo,b===undefined?"?":el("span",{class:b>0?"bad":"ok"},b>0?"OPEN":"closed"),String(c.cache_hits_total??0),String(Object.entries(c).filter(([k])=>k.startsWith("calls_total")).reduce((a,[,v])=>a+v,0))];});
 $("gwnote").textContent=s.gateways.length?"Gateways report their counters with every outcome flush (about once a second per worker).":"No gateway has reported yet: gateways report with their outcome batches (Lua gateway).";
 rows($("stops"),["time","action","request","route","reasons","source",""],s.stops,(r)=>r.kind!=="decision"?[]:[time(r.ts),pill(r.action),el("code",{},r.request_id),r.method+" "+r.path,el("code",{},(r.reasons||[]).join(", ")),r.source,el("button",{type:"button",onclick:()=>{$("rid").value=r.request_id;lookup(r.request_id);}},"explain")]);
 rows($("overrides"),["action","key","expires","note","by",""],s.overrides,(o)=>[pill(o.action),el("code",{},o.key),Math.max(0,Math.round((o.expires-Date.now())/1000))+" s left",o.note,o.by+" ("+o.via+")",el("button",{type:"button",onclick:()=>del(o.id)},"delete")]);
 rows($("olog"),["time","change","action","key","note","by"],s.override_log,(o)=>[time(o.ts),o.change,pill(o.action),el("code",{},o.key),o.note,o.by+" ("+o.via+", "+o.peer+")"]);
 rows($("inventory"),["method","template","route","status","requests","reveals account existence","statuses"],s.inventory,(e)=>[e.method,el("code",{},e.template),e.route??"—",el("span",{class:e.status==="declared"?"":"bad"},e.status),String(e.requests),e.reveals_account_existence?el("span",{class:"bad"},"yes"):"no",Object.entries(e.statuses||{}).map(([k,v])=>k+":"+v).join(" ")]);
 const ex=s.exposure||[];
 rows($("exposure"),["endpoint","route","inspected","kinds (responses unmasked / masked)","records (mean · p95)","bytes (mean)","flags"],ex,(e)=>{const x=e.exposure;return[el("code",{},e.method+" "+e.template),e.route??"—",String(x.inspected),
  el("div",{},...x.kinds.map(k=>el("div",{},el("code",{},k.kind)," ",el("span",{class:k.unmasked_responses?"bad":""},String(k.unmasked_responses))," / "+k.masked_responses+" · "+k.values_per_response+" per response"))),
  x.records_mean+" · ≤ "+x.records_p95,String(x.bytes_mean),el("div",{},...x.flags.map(f=>el("div",{class:"bad"},flagText(f))))];});
 $("exnote").textContent=ex.length?"":"No response inspected yet: gateways report what they found in responses with their outcome batches (Lua gateway, $verdict_inspect).";
 $("policy").replaceChildren(el("p",{},"version ",el("code",{},s.policy_version)));
 rows($("phistory"),["time","version","result"],s.policy_history.slice().reverse(),(p)=>[time(p.at),el("code",{},p.version),p.result+(p.error?": "+p.error:"")]);}
async function refresh(){try{const res=await fetch("/v1/console/state",{headers:headers()});if(res.ok)render(await res.json());}catch(e){$("clock").textContent="service unreachable";}}
async function del(id){const res=await fetch("/v1/overrides/"+encodeURIComponent(id),{method:"DELETE",headers:headers()});$("ostatus").textContent=res.ok?"deleted":"refused: "+res.status;refresh();}
$("lookup").addEventListener("submit",(e)=>{e.preventDefault();const id=$("rid").value.trim();if(id)lookup(id);});
$("override").addEventListener("submit",async(e)=>{e.preventDefault();$("ostatus").textContent="…";
 const body={key:$("okey").value.trim(),action:$("oaction").value,ttl_s:Number($("ottl").value),note:$("onote").value,by:$("oby").value,hashed:$("ohashed").checked};
 const res=await fetch("/v1/overrides",{method:"POST",headers:headers({"content-type":"application/json"}),body:JSON.stringify(body)});const out=await res.json();
 $("ostatus").textContent=res.ok?("applied: "+out.action+" "+out.key+" ("+out.id+")"):("refused: "+((out.error&&out.error.message)||res.status));refresh();});
render(JSON.parse($("state").textContent));setInterval(refresh,2000);
</script></body></html>`;
}
