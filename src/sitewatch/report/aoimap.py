"""The facility catalog on one self-contained, offline HTML map (``sitewatch aoi map``).

The page is a single file: an inline SVG in longitude/latitude (equirectangular, x
scaled by cos of the mean latitude) with a 1°/5° graticule and no coastline, tiles, CDN
scripts or fonts, so it opens offline and leaks no request. Every located facility is a
box (its polygon, dashed when it is a working box) and a dot coloured by confidence;
the reference points of unlocated facilities are hollow grey rings, labelled as hints.
A popup (plain HTML) gives the name, geometry note, sources, events and conflicts; the
page opened as ``map.html#ID`` zooms to that facility and opens its popup. Every
marker and list entry is a keyboard-focusable button; Enter opens the popup, Escape
closes it, and +/-/arrow keys zoom and pan the map.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shapely.geometry import mapping

from sitewatch.aoi import AOI
from sitewatch.errors import OutputError

__all__ = ["GENERATOR", "build_map_html", "map_data", "write_map"]

GENERATOR = "sitewatch aoi map"
"""``<meta name="generator">`` of the page; a file carrying it may be replaced."""
COLOURS = {"high": "#1a9850", "medium": "#e08214", "low": "#d73027"}


def _rings(aoi: AOI) -> list[list[list[float]]]:
    if aoi.geometry is None:
        return []
    geo = mapping(aoi.geometry)
    polys = [geo["coordinates"]] if geo["type"] == "Polygon" else list(geo["coordinates"])
    return [[[round(x, 6), round(y, 6)] for x, y in poly[0]] for poly in polys]


def map_data(catalog: Mapping[str, AOI]) -> list[dict[str, Any]]:
    """What the page shows of each facility, JSON-ready.

    Parameters
    ----------
    catalog : mapping of id to AOI
        From :func:`sitewatch.aoi.load_catalog`.

    Returns
    -------
    list of dict
        One per facility: id, name, kind, countries, located, confidence, geometry kind
        and note, outline rings (lon/lat), centre, sourced points, reference points,
        sources, events, conflicts, ``see_instead`` and origin.
    """
    out = []
    for a in catalog.values():
        p = a.properties
        see = p.get("see_instead")
        out.append(
            {
                "id": a.id,
                "name": a.name,
                "kind": a.kind,
                "countries": list(a.countries),
                "located": a.located,
                "confidence": a.confidence,
                "geometry_kind": a.geometry_kind,
                "note": p.get("geometry_note") or "",
                "rings": _rings(a),
                "centre": list(a.centroid) if a.centroid else None,
                "area_km2": round(a.area_m2 / 1e6, 2),
                "points": [_pt(x) for x in p.get("points") or [] if x.get("lat") is not None],
                "hints": [
                    _pt(x) for x in p.get("reference_points") or [] if x.get("lat") is not None
                ],
                "sources": [
                    {k: s.get(k) for k in ("outlet", "date", "title", "url", "supports")}
                    for s in p.get("sources") or []
                ],
                "events": [
                    {"date": str(e.get("date")), "event": e.get("event")}
                    for e in p.get("events") or []
                ],
                "conflicts": [str(c) for c in p.get("conflicts") or []],
                "see_instead": see.get("id") if isinstance(see, Mapping) else None,
                "origin": a.origin,
            }
        )
    return out


def _pt(x: Mapping[str, Any]) -> dict[str, Any]:
    return {k: x.get(k) for k in ("name", "lat", "lon", "source", "confidence", "note")}


def build_map_html(catalog: Mapping[str, AOI], *, title: str = "sitewatch facility catalog") -> str:
    """The whole page as one string (no external resources).

    Parameters
    ----------
    catalog : mapping of id to AOI
        Facilities to show.
    title : str
        Page title.

    Returns
    -------
    str
        HTML5 text.
    """
    data = json.dumps(map_data(catalog), ensure_ascii=False).replace("</", "<\\/")
    legend = "".join(
        f'<li><span class="sw" style="background:{c}"></span>{k} confidence</li>'
        for k, c in COLOURS.items()
    )
    return (
        _TEMPLATE.replace("__TITLE__", html.escape(title))
        .replace("__GENERATOR__", GENERATOR)
        .replace("__LEGEND__", legend)
        .replace("__COLOURS__", json.dumps(COLOURS))
        .replace("__DATA__", data)
    )


def write_map(
    catalog: Mapping[str, AOI], out: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write the map page atomically.

    An existing file is replaced only when it is a page this function wrote (it carries
    :data:`GENERATOR`) or ``overwrite`` is true.

    Parameters
    ----------
    catalog : mapping of id to AOI
        Facilities to show.
    out : path
        The ``.html`` file.
    overwrite : bool
        Replace any existing file.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    OutputError
        If ``out`` is a folder, exists and is not a sitewatch map (without
        ``overwrite``), or cannot be written.
    """
    path = Path(out)
    if path.is_dir():
        raise OutputError(f"--out {path} is a folder; give a file name such as aoi-map.html")
    if path.exists() and not overwrite:
        head = path.read_bytes()[:2000].decode("utf-8", "replace")
        if f'content="{GENERATOR}"' not in head:
            raise OutputError(f"{path} exists and is not a sitewatch map; add --overwrite")
    text = build_map_html(catalog)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, _file_mode())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise OutputError(f"cannot write {path} ({err.strerror})") from None
    return path


def _file_mode() -> int:
    """0o666 less the process umask: what ``open()`` would have given the file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="generator" content="__GENERATOR__">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;
 display:grid;grid-template-columns:1fr 320px;grid-template-rows:auto 1fr;height:100vh}
header{grid-column:1/3;padding:6px 12px;background:#23395d;color:#fff;display:flex;gap:16px;
 align-items:baseline}
header h1{font-size:17px;margin:0}
header p{margin:0;font-size:13px;opacity:.9}
#mapwrap{position:relative;overflow:hidden;background:#f4f7fb;border-right:1px solid #ccd}
#map{width:100%;height:100%;display:block;cursor:grab}
#map:focus{outline:3px solid #4a90d9;outline-offset:-3px}
.grat{stroke:#c9d3e0;fill:none;vector-effect:non-scaling-stroke;stroke-width:.6}
.grat.major{stroke:#9fb0c6;stroke-width:1}
.glbl{fill:#6b7d95;font-family:system-ui,sans-serif}
.box{vector-effect:non-scaling-stroke;stroke-width:2;fill-opacity:.18}
.box.working_box{stroke-dasharray:6 3}
.fac{cursor:pointer}
.fac circle{stroke:#fff;vector-effect:non-scaling-stroke;stroke-width:1.5}
.fac:focus{outline:none}
.fac:focus circle,.fac:hover circle{stroke:#000;stroke-width:3}
.hint circle{fill:none;stroke:#777;stroke-dasharray:3 2;vector-effect:non-scaling-stroke;
 stroke-width:2}
.hint:focus circle,.hint:hover circle{stroke:#000;stroke-width:3}
.flbl{font-family:system-ui,sans-serif;fill:#1d2a3a;paint-order:stroke;stroke:#fff;
 stroke-width:3px;stroke-linejoin:round;vector-effect:non-scaling-stroke;pointer-events:none}
#tools{position:absolute;left:10px;top:10px;display:flex;flex-direction:column;gap:4px}
#tools button{width:34px;height:34px;font-size:18px;border:1px solid #99a;background:#fff;
 border-radius:4px;cursor:pointer}
#legend{position:absolute;left:10px;bottom:10px;background:rgba(255,255,255,.92);
 border:1px solid #ccd;border-radius:4px;padding:6px 10px;font-size:12px}
#legend ul{list-style:none;margin:0;padding:0}
#scale{position:absolute;right:12px;bottom:12px;background:rgba(255,255,255,.9);padding:2px 6px;
 font-size:12px;border-radius:3px}
#scalebar{height:6px;border:2px solid #333;border-top:none;margin-bottom:1px}
#legend li{display:flex;align-items:center;gap:6px}
.sw{display:inline-block;width:12px;height:12px;border-radius:50%}
.sw.box{border-radius:0;border:2px dashed #555;background:none}
.sw.hint{background:none;border:2px dashed #777}
aside{overflow:auto;padding:8px 12px}
aside h2{font-size:15px;margin:10px 0 4px}
aside ul{list-style:none;padding:0;margin:0}
aside li button{all:unset;display:block;width:100%;padding:3px 4px;border-radius:3px;
 cursor:pointer}
aside li button:hover,aside li button:focus{background:#e4ecf7;outline:2px solid #4a90d9}
aside .unl{color:#555;font-size:13px;padding:3px 4px}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px}
#popup{position:absolute;max-width:440px;max-height:70%;overflow:auto;background:#fff;
 border:1px solid #889;border-radius:6px;box-shadow:0 4px 16px rgba(0,0,0,.25);
 padding:10px 12px;font-size:13px;display:none;z-index:5}
#popup h3{margin:0 28px 4px 0;font-size:15px}
#popup h4{margin:8px 0 2px;font-size:13px}
#popup ul{margin:0;padding-left:18px}
#popup .meta{color:#444}
#popup .close{position:absolute;right:6px;top:6px;border:1px solid #aab;background:#f6f6f6;
 border-radius:4px;width:26px;height:26px;cursor:pointer}
.tag{display:inline-block;border-radius:3px;padding:0 5px;color:#fff;font-size:12px}
</style>
</head>
<body>
<header><h1>__TITLE__</h1>
<p id="summary"></p></header>
<div id="mapwrap">
<svg id="map" role="application" tabindex="0" aria-label="Map of the catalog facilities.
 Use plus and minus to zoom, arrow keys to pan, Tab to move between facilities, Enter to open
 one." xmlns="http://www.w3.org/2000/svg"><g id="grat"></g><g id="boxes"></g><g id="hints"></g>
<g id="facs"></g></svg>
<div id="tools"><button type="button" id="zin" aria-label="Zoom in">+</button>
<button type="button" id="zout" aria-label="Zoom out">&minus;</button>
<button type="button" id="zall" aria-label="Show all facilities"
 title="Show all">&#8617;</button></div>
<div id="legend"><ul>__LEGEND__
<li><span class="sw box"></span>working box (not a sourced outline)</li>
<li><span class="sw hint"></span>unlocated: town/reference point only</li></ul>
<div>Lon/lat, equirectangular; no coastline. Offline page.</div></div>
<div id="scale" aria-hidden="true"><div id="scalebar"></div><span id="scaletext"></span></div>
<div id="popup" role="dialog" aria-modal="false" aria-labelledby="ptitle" tabindex="-1"></div>
</div>
<aside><h2>Located facilities</h2><ul id="loclist"></ul>
<h2>Unlocated (no polygon)</h2><ul id="unllist"></ul></aside>
<script type="application/json" id="data">__DATA__</script>
<script>
(function(){
"use strict";
var DATA=JSON.parse(document.getElementById("data").textContent);
var COL=__COLOURS__;
var NS="http://www.w3.org/2000/svg";
var svg=document.getElementById("map"),pop=document.getElementById("popup");
var located=DATA.filter(function(d){return d.located;});
var unloc=DATA.filter(function(d){return !d.located;});
document.getElementById("summary").textContent=DATA.length+" facilities: "+located.length+
 " located, "+unloc.length+" unlocated. Click or press Enter on a facility for its sources.";
var all=[];
located.forEach(function(d){d.rings.forEach(function(r){all=all.concat(r);});});
unloc.forEach(function(d){d.hints.forEach(function(h){all.push([h.lon,h.lat]);});});
if(!all.length){all=[[0,0]];}
var lats=all.map(function(p){return p[1];});
var K=Math.cos((Math.min.apply(null,lats)+Math.max.apply(null,lats))/2*Math.PI/180);
function X(lon){return lon*K;} function Y(lat){return -lat;}
function el(tag,attrs,parent){var e=document.createElementNS(NS,tag);
 for(var k in attrs){e.setAttribute(k,attrs[k]);} if(parent){parent.appendChild(e);} return e;}
function ext(pts,pad){var xs=pts.map(function(p){return X(p[0]);}),
 ys=pts.map(function(p){return Y(p[1]);});
 var x0=Math.min.apply(null,xs),x1=Math.max.apply(null,xs),y0=Math.min.apply(null,ys),
 y1=Math.max.apply(null,ys);var w=Math.max(x1-x0,0.05),h=Math.max(y1-y0,0.05);
 return [x0-w*pad-0.02,y0-h*pad-0.02,w*(1+2*pad)+0.04,h*(1+2*pad)+0.04];}
var HOME=ext(all,0.08),vb=HOME.slice();
// graticule
var g=document.getElementById("grat");
var lo0=Math.floor(HOME[0]/K)-40,lo1=Math.ceil((HOME[0]+HOME[2])/K)+40;
var la0=Math.floor(-(HOME[1]+HOME[3]))-40,la1=Math.ceil(-HOME[1])+40;
lo0=Math.max(lo0,-180);lo1=Math.min(lo1,180);la0=Math.max(la0,-90);la1=Math.min(la1,90);
var labels=[];
for(var lon=lo0;lon<=lo1;lon++){el("line",{x1:X(lon),x2:X(lon),y1:Y(la0),y2:Y(la1),
 "class":"grat"+(lon%5===0?" major":"")},g);
 if(lon%5===0){labels.push(el("text",{"class":"glbl","data-lon":lon},g));
 labels[labels.length-1].textContent=Math.abs(lon)+"\\u00b0"+(lon<0?"W":"E");}}
for(var lat=la0;lat<=la1;lat++){el("line",{x1:X(lo0),x2:X(lo1),y1:Y(lat),y2:Y(lat),
 "class":"grat"+(lat%5===0?" major":"")},g);
 if(lat%5===0){labels.push(el("text",{"class":"glbl","data-lat":lat},g));
 labels[labels.length-1].textContent=Math.abs(lat)+"\\u00b0"+(lat<0?"S":"N");}}
// facilities
var markers=[],texts=[],byId={};
function button(g,label,open){g.setAttribute("tabindex","0");g.setAttribute("role","button");
 g.setAttribute("aria-label",label);
 g.addEventListener("click",function(ev){ev.stopPropagation();open();});
 g.addEventListener("keydown",function(ev){if(ev.key==="Enter"||ev.key===" "){
 ev.preventDefault();ev.stopPropagation();open();}});}
located.forEach(function(d){
 var c=COL[d.confidence]||"#555";
 d.rings.forEach(function(r){el("path",{d:"M"+r.map(function(p){return X(p[0])+","+Y(p[1]);})
 .join("L")+"Z","class":"box "+(d.geometry_kind||""),stroke:c,fill:c,"data-id":d.id},
 document.getElementById("boxes"));});
 var gr=el("g",{"class":"fac","data-id":d.id},document.getElementById("facs"));
 var m=el("circle",{cx:X(d.centre[0]),cy:Y(d.centre[1]),r:1,fill:c},gr);
 var t=el("text",{"class":"flbl","data-x":X(d.centre[0]),"data-y":Y(d.centre[1])},gr);
 t.textContent=d.id;markers.push(m);texts.push(t);
 button(gr,d.name+", "+d.confidence+" confidence, "+(d.geometry_kind||"").replace("_"," "),
 function(){show(d,gr);});
 byId[d.id]={d:d,g:gr};});
unloc.forEach(function(d){d.hints.forEach(function(h){
 var gr=el("g",{"class":"hint","data-id":d.id},document.getElementById("hints"));
 var m=el("circle",{cx:X(h.lon),cy:Y(h.lat),r:1},gr);markers.push(m);
 button(gr,d.name+": unlocated, hint point "+h.name+" (not the facility)",
 function(){show(d,gr);});
 if(!byId[d.id]){byId[d.id]={d:d,g:gr};}});});
function apply(){var cw=svg.clientWidth||1,ch=svg.clientHeight||1,a=ch/cw;
 if(vb[3]/vb[2]<a){var nh=vb[2]*a;vb[1]-=(nh-vb[3])/2;vb[3]=nh;}
 else{var nw=vb[3]/a;vb[0]-=(nw-vb[2])/2;vb[2]=nw;}
 svg.setAttribute("viewBox",vb.join(" "));
 var px=vb[2]/cw;
 markers.forEach(function(m){m.setAttribute("r",7*px);});
 texts.forEach(function(t){t.setAttribute("x",+t.dataset.x+9*px);
 t.setAttribute("y",+t.dataset.y+4*px);t.setAttribute("font-size",12*px);
 t.style.display=vb[2]<6?"":"none";});
 scale(px);
 labels.forEach(function(l){l.setAttribute("font-size",11*px);
 if(l.dataset.lon!==undefined){l.setAttribute("x",X(+l.dataset.lon)+3*px);
 l.setAttribute("y",vb[1]+13*px);}else{l.setAttribute("x",vb[0]+3*px);
 l.setAttribute("y",Y(+l.dataset.lat)-3*px);}});}
function scale(px){var lat=-(vb[1]+vb[3]/2);
 var kmpx=px/K*111.32*Math.cos(lat*Math.PI/180),want=kmpx*120,step=[1,2,5];
 var p=Math.pow(10,Math.floor(Math.log(want)/Math.LN10)),best=p;
 step.forEach(function(s){if(s*p<=want){best=s*p;}});
 var bar=document.getElementById("scalebar");bar.style.width=(best/kmpx)+"px";
 document.getElementById("scaletext").textContent=(best>=1?best:best.toFixed(3))+" km";}
function zoom(f,cx,cy){if(cx===undefined){cx=vb[0]+vb[2]/2;cy=vb[1]+vb[3]/2;}
 var w=vb[2]*f,h=vb[3]*f;if(w<0.005||w>HOME[2]*4){return;}
 vb=[cx-(cx-vb[0])*f,cy-(cy-vb[1])*f,w,h];apply();}
function pan(dx,dy){vb[0]+=dx*vb[2];vb[1]+=dy*vb[3];apply();}
function focusOn(d){var pts=[];d.rings.forEach(function(r){pts=pts.concat(r);});
 d.hints.forEach(function(h){pts.push([h.lon,h.lat]);});if(!pts.length){return;}
 var e=ext(pts,1.5),cw=svg.clientWidth||1,ch=svg.clientHeight||1;
 var s=Math.max(e[2]/cw,e[3]/ch,0.06/cw);
 vb=[e[0]+e[2]/2-s*cw/2,e[1]+e[3]/2-s*ch/2,s*cw,s*ch];apply();}
function esc(s){return String(s==null?"":s).replace(/[&<>"]/g,function(c){
 return {"&":"&amp;","<":"&lt;",">":"&gt;","\\"":"&quot;"}[c];});}
var opener=null;
function show(d,anchor){opener=anchor||null;var c=COL[d.confidence]||"#555";
 var h="<button type='button' class='close' aria-label='Close'>&times;</button>"+
 "<h3 id='ptitle'>"+esc(d.name)+"</h3><div class='meta'><code>"+esc(d.id)+"</code> &middot; "+
 esc(d.kind)+" &middot; "+esc(d.countries.join(", "))+" &middot; <span class='tag' "+
 "style='background:"+c+"'>"+esc(d.confidence)+"</span>"+
 (d.origin==="user"?" &middot; <b>your catalog</b>":"")+"</div>";
 h+=d.located?"<p>"+(d.geometry_kind==="working_box"?"<b>Working box</b> (not a sourced "+
 "outline)":"Sourced outline")+", "+d.area_km2+" km&sup2;.</p>":
 "<p><b>Unlocated</b>: no polygon. "+(d.hints.length?"The ring marks a reference point, "+
 "<b>not the facility</b>.":"")+"</p>";
 if(d.see_instead){h+="<p>Watch instead: <button type='button' class='goto' data-id='"+
 esc(d.see_instead)+"'>"+esc(d.see_instead)+"</button></p>";}
 h+="<h4>Note</h4><p>"+esc(d.note)+"</p>";
 if(d.points.length){h+="<h4>Sourced points</h4><ul>"+d.points.map(function(p){return "<li>"+
 esc(p.name)+": "+p.lat+", "+p.lon+" ("+esc(p.confidence)+"; "+esc(p.source)+")</li>";})
 .join("")+"</ul>";}
 if(d.hints.length){h+="<h4>Reference points (not the facility)</h4><ul>"+d.hints.map(function(p){
 return "<li>"+esc(p.name)+": "+p.lat+", "+p.lon+" ("+esc(p.confidence)+"; "+esc(p.source)+
 ")</li>";}).join("")+"</ul>";}
 h+="<h4>Sources</h4><ul>"+d.sources.map(function(s){var o=esc(s.outlet)+(s.date?", "+
 esc(s.date):"");if(s.url){o="<a href='"+esc(s.url)+"' rel='noreferrer'>"+o+"</a>";}
 return "<li>"+o+(s.title?" &ndash; <i>"+esc(s.title)+"</i>":"")+": "+esc(s.supports)+"</li>";})
 .join("")+"</ul>";
 if(d.events.length){h+="<h4>Events</h4><ul>"+d.events.map(function(e){return "<li><b>"+
 esc(e.date)+"</b> "+esc(e.event)+"</li>";}).join("")+"</ul>";}
 if(d.conflicts.length){h+="<h4>Conflicts</h4><ul>"+d.conflicts.map(function(c){return "<li>"+
 esc(c)+"</li>";}).join("")+"</ul>";}
 pop.innerHTML=h;pop.style.display="block";
 var wrap=document.getElementById("mapwrap").getBoundingClientRect();
 var r=anchor&&anchor.getBoundingClientRect?anchor.getBoundingClientRect():null;
 var x=r&&r.width?r.right-wrap.left+8:60,y=r&&r.height?r.top-wrap.top:60;
 x=Math.min(x,wrap.width-pop.offsetWidth-8);y=Math.min(Math.max(8,y),wrap.height-pop.offsetHeight-8);
 pop.style.left=Math.max(8,x)+"px";pop.style.top=Math.max(8,y)+"px";
 pop.querySelector(".close").addEventListener("click",hide);
 Array.prototype.forEach.call(pop.querySelectorAll(".goto"),function(b){
 b.addEventListener("click",function(){var t=byId[b.dataset.id];if(t){focusOn(t.d);
 show(t.d,t.g);}});});
 pop.focus();}
function hide(){pop.style.display="none";if(opener&&opener.focus){opener.focus();}}
pop.addEventListener("keydown",function(ev){if(ev.key==="Escape"){hide();}});
// side list
function item(list,d,extra){var li=document.createElement("li"),b=document.createElement("button");
 b.type="button";b.innerHTML="<span class='dot' style='background:"+(d.located?COL[d.confidence]:
 "#bbb")+"'></span>"+esc(d.name)+" <small>("+esc(d.id)+")</small>"+(extra||"");
 b.addEventListener("click",function(){focusOn(d);var t=byId[d.id];show(d,t?t.g:b);});
 li.appendChild(b);list.appendChild(li);}
located.forEach(function(d){item(document.getElementById("loclist"),d);});
unloc.forEach(function(d){
 var extra=d.see_instead?" <small>&rarr; watch "+esc(d.see_instead)+"</small>":
 (d.hints.length?" <small>(hint point)</small>":"");
 item(document.getElementById("unllist"),d,extra);});
// interaction
document.getElementById("zin").addEventListener("click",function(){zoom(0.5);});
document.getElementById("zout").addEventListener("click",function(){zoom(2);});
document.getElementById("zall").addEventListener("click",function(){vb=HOME.slice();apply();});
svg.addEventListener("wheel",function(ev){ev.preventDefault();var r=svg.getBoundingClientRect();
 var cx=vb[0]+(ev.clientX-r.left)/r.width*vb[2],cy=vb[1]+(ev.clientY-r.top)/r.height*vb[3];
 zoom(ev.deltaY<0?0.8:1.25,cx,cy);},{passive:false});
var drag=null;
svg.addEventListener("mousedown",function(ev){drag=[ev.clientX,ev.clientY,vb[0],vb[1]];});
window.addEventListener("mouseup",function(){drag=null;});
window.addEventListener("mousemove",function(ev){if(!drag){return;}
 var r=svg.getBoundingClientRect();vb[0]=drag[2]-(ev.clientX-drag[0])/r.width*vb[2];
 vb[1]=drag[3]-(ev.clientY-drag[1])/r.height*vb[3];apply();});
svg.addEventListener("keydown",function(ev){var k=ev.key;
 if(k==="+"||k==="="){zoom(0.5);}else if(k==="-"){zoom(2);}
 else if(k==="ArrowLeft"){pan(-0.1,0);}else if(k==="ArrowRight"){pan(0.1,0);}
 else if(k==="ArrowUp"){pan(0,-0.1);}else if(k==="ArrowDown"){pan(0,0.1);}
 else if(k==="0"){vb=HOME.slice();apply();}else if(k==="Escape"){hide();}else{return;}
 ev.preventDefault();});
window.addEventListener("resize",apply);
apply();
var start=decodeURIComponent(location.hash.slice(1));
var first=DATA.filter(function(d){return d.id===start;})[0];
if(first){var t=byId[first.id]||(first.see_instead&&byId[first.see_instead]);
 if(t){focusOn(t.d);}show(first,byId[first.id]?byId[first.id].g:null);}
document.body.setAttribute("data-rendered",String(located.length));
})();
</script>
</body>
</html>
"""
