// Used by serve.sh (when node >= 18 is installed): runs the /docs page's
// script against a live server with a minimal DOM. Every operation of
// /openapi.json must render, and pressing "Send" on GET /recommend must
// show a 200 answer with recommendations.
// usage: node serve_docs.js BASE_URL DOCS_HTML_FILE
const base = process.argv[2];
const html = process.argv[3];
const script = require('fs').readFileSync(html, 'utf8').match(/<script>([\s\S]*)<\/script>/)[1];
function node(tag) {
  return {tag, attrs: {}, children: [], textContent: '', value: '',
          setAttribute(k, v) { this.attrs[k] = v; },
          append(...c) { this.children.push(...c); }};
}
const byId = {desc: node('p'), ops: node('div')};
global.document = {createElement: node, getElementById: id => byId[id]};
const realFetch = fetch;
global.fetch = (url, init) => realFetch(base + url, init);
const find = (n, pred, out = []) => {
  if (typeof n !== 'object') return out;
  if (pred(n)) out.push(n);
  for (const c of n.children || []) find(c, pred, out);
  return out;
};
eval(script);
setTimeout(async () => {
  const ops = byId.ops.children;
  if (ops.length !== 29) { console.log('FAIL: rendered ' + ops.length + ' operations: ' + byId.desc.textContent); process.exit(1); }
  const rec = ops.find(o => find(o, n => n.tag === 'code' && n.textContent === '/recommend').length);
  const inputs = find(rec, n => n.tag === 'input');
  inputs[0].value = '1';   // user_id
  inputs[1].value = '';    // liked (example filled in: clear it)
  inputs[2].value = '3';   // k
  const btn = find(rec, n => n.tag === 'button')[0];
  const out = find(rec, n => n.tag === 'pre')[0];
  await btn.onclick();
  if (!/\n200 /.test(out.textContent) || !/"recommendations"/.test(out.textContent)) {
    console.log('FAIL: Send on /recommend showed: ' + out.textContent.slice(0, 300)); process.exit(1);
  }
  console.log('docs page OK: ' + ops.length + ' operations');
}, 500);
