// Cross-check of nanobanana against Google's official JS SDK (@google/genai).
//
// Both clients talk to the same local fake Gemini server (fake/gemini_server.py,
// 127.0.0.1 only).  For each logical call we make the request once through the
// SDK and once through nanobanana (a lua5.4 child process), then assert that:
//   * the server accepted both requests (status 200, no fault);
//   * both used the same method, path, query and way of sending the API key
//     (the x-goog-api-key header);
//   * the two recorded request bodies are deep-equal JSON once the fields the
//     SDK adds on its own (SDK_ADDS, below) are removed from the SDK's body;
//   * the final images have the same bytes (sha256) on both sides (and match
//     what the server says it sent), with the same declared MIME types, the
//     same number of thought parts and the same text;
//   * streamed (generateContentStream vs client:stream): the same endpoint and
//     query (alt=sse), the same body, the same parts in the same order, and
//     the same image bytes.
//   * the service calls: files.upload vs client:upload (the same resumable
//     exchanges: start headers and body, chunk offsets, commands and sizes,
//     and the same file), countTokens vs client:count_tokens, batches.create
//     and batches.get vs client:batch and job:refresh, and Vertex AI (express
//     mode with a key, and a project with an OAuth token) vs nanobanana's
//     vertex clients: the same paths, auth headers and bodies.
//
// Run from the repo root:  node --test spec/sdk/
// Needs: `npm ci` in spec/sdk, python3, lua5.4 with lua-cjson, and nanobanana
// built into build/ (cmake -S . -B build && cmake --build build).

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, mkdir, readFile, writeFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { GoogleGenAI } from "@google/genai";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const FAKE_SERVER = path.join(ROOT, "fake", "gemini_server.py");
const API_KEY = "test-key";
const FLASH = "gemini-2.5-flash-image";
const PRO = "gemini-3-pro-image-preview";

// What @google/genai 2.32.0 puts into a generateContent request BODY by
// itself, i.e. what nanobanana is not expected to send.  Found empirically by
// diffing the server-recorded bodies of the calls below (and of variants:
// no config, config {}, config {imageConfig: {}}):
//
//   * `generationConfig: {}` -- the SDK always turns the `config` argument
//     into a `generationConfig` object, even when there is nothing in it.
//     Call (b) passes `config: {}` (it has no image or thinking options), so
//     the SDK sends an empty `"generationConfig": {}`, which nanobanana (with
//     no generation options) rightly leaves out.  Without a `config` argument
//     the SDK sends no generationConfig at all.  Removed ONLY when its value
//     is exactly {}: a non-empty generationConfig is always compared.
//
// Nothing else: `config.imageConfig` / `config.thinkingConfig` land in
// generationConfig unchanged, and explicit `contents` go out as given (role
// kept, parts in order, base64 untouched; no responseModalities, no
// candidateCount, no safety settings, no systemInstruction).  The SDK's other
// additions are headers, which are not compared: user-agent and
// x-goog-api-client "google-genai-sdk/2.32.0 gl-node/v20.x",
// accept-language "*", sec-fetch-mode "cors" (nanobanana sends its own
// user-agent/x-goog-api-client and x-server-timeout instead).
//
// Each entry: a dotted path into the body and the exact value the SDK puts
// there; the field is dropped from the SDK's body only when it holds exactly
// that value.
const SDK_ADDS = Object.freeze([
  Object.freeze({ path: "generationConfig", value: Object.freeze({}) }),
]);

// Environment variables that could redirect either client away from the fake
// server (or change its credentials); removed for the test process and the
// Lua children.
const SCRUB_ENV = [
  "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_VERTEX_BASE_URL",
  "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
  "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
];
for (const name of SCRUB_ENV) delete process.env[name];

// --------------------------------------------------------------------------- helpers

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

function sniff(buf) {
  if (buf.length >= 8 && buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return "image/png";
  if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return "image/jpeg";
  if (buf.length >= 12 && buf.toString("latin1", 0, 4) === "RIFF" && buf.toString("latin1", 8, 12) === "WEBP") return "image/webp";
  return null;
}

// cjson encodes an empty Lua table as {}: treat that as an empty array.
const asArray = (v) => (Array.isArray(v) ? v : []);

function deepClone(v) { return JSON.parse(JSON.stringify(v)); }

/** Copy of the SDK's recorded body without the SDK_ADDS fields it holds. */
function withoutSdkAdds(body) {
  const out = deepClone(body);
  for (const { path: p, value } of SDK_ADDS) {
    const keys = p.split(".");
    let node = out;
    for (const k of keys.slice(0, -1)) node = node && typeof node === "object" ? node[k] : undefined;
    const last = keys[keys.length - 1];
    if (node && typeof node === "object" && last in node && isDeepStrictEqual(node[last], value)) delete node[last];
  }
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --------------------------------------------------------------------------- fake server

let tmp; // temp dir for this run (port file, reference images, Lua outputs)
let server; // child process
let serverErr = "";
let baseUrl;

async function startServer() {
  const portFile = path.join(tmp, "port");
  server = spawn("python3", [FAKE_SERVER, "--port", "0", "--port-file", portFile, "--quiet",
    "--api-key", API_KEY], { stdio: ["ignore", "ignore", "pipe"], cwd: tmp });
  server.stderr.setEncoding("utf8");
  server.stderr.on("data", (d) => { serverErr += d; });
  let exited = null;
  server.once("exit", (code, sig) => { exited = `exited with ${code ?? sig}`; });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`fake server ${exited}: ${serverErr}`);
    if (existsSync(portFile)) {
      const port = Number.parseInt(await readFile(portFile, "utf8"), 10);
      if (port > 0) return `http://127.0.0.1:${port}`;
    }
    await sleep(25);
  }
  throw new Error(`fake server did not write its port within 10 s: ${serverErr}`);
}

async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const gone = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM");
  const t = setTimeout(() => server.kill("SIGKILL"), 3000);
  await gone;
  clearTimeout(t);
}

async function control(method, name) {
  const res = await fetch(`${baseUrl}/_nb/${name}`, { method });
  assert.equal(res.status, 200, `control ${method} /_nb/${name}`);
  return res.json();
}

// --------------------------------------------------------------------------- the two clients

function sdkClient() {
  return new GoogleGenAI({ apiKey: API_KEY, httpOptions: { baseUrl } });
}

async function sdkGenerate({ model, prompt, images = [], config = {} }) {
  const parts = [{ text: prompt }];
  for (const buf of images) parts.push({ inlineData: { mimeType: "image/png", data: buf.toString("base64") } });
  return sdkClient().models.generateContent({ model, contents: [{ role: "user", parts }], config });
}

const LUA = String.raw`
local cjson = require "cjson"
local nb = require "nanobanana"
local spec = cjson.decode(os.getenv("NB_SPEC"))
local c = nb.new { base_url = spec.base_url, api_key = spec.api_key, auth = "x-goog-api-key" }
local opts = { model = spec.model }
if spec.imageConfig then opts.imageConfig = spec.imageConfig end
if spec.generationConfig then opts.generationConfig = spec.generationConfig end
if spec.images and #spec.images > 0 then opts.images = spec.images end
local res, err = c:generate(spec.prompt, opts)
if not res then io.stderr:write("generate failed: ", tostring(err), "\n"); os.exit(2) end
local out = { images = {}, thoughts = #res.thoughts, thought_kinds = {}, text = res.text or cjson.null }
for i, im in ipairs(res.images) do
  assert(type(im.data) == "string", "res.images[" .. i .. "].data is not a string")
  local p = spec.out_dir .. "/nb-" .. i .. ".bin"
  local f = assert(io.open(p, "wb")); assert(f:write(im.data)); assert(f:close())
  out.images[i] = { path = p, bytes = #im.data, mimeType = im.mimeType or cjson.null,
                    declaredMimeType = im.declaredMimeType or cjson.null }
end
for i, t in ipairs(res.thoughts) do out.thought_kinds[i] = t.text and "text" or "image" end
io.write(cjson.encode(out))
`;

let luaRuns = 0;
async function nbGenerate({ model, prompt, imagePaths = [], imageConfig, generationConfig }) {
  const outDir = path.join(tmp, `lua-${++luaRuns}`);
  await mkdir(outDir);
  const spec = { base_url: baseUrl, api_key: API_KEY, model, prompt, images: imagePaths, out_dir: outDir };
  if (imageConfig) spec.imageConfig = imageConfig;
  if (generationConfig) spec.generationConfig = generationConfig;
  const env = { ...process.env };
  env.LUA_PATH = `${ROOT}/lua/?.lua;${ROOT}/lua/?/init.lua;;`;
  env.LUA_CPATH = `${ROOT}/build/?.so;;`;
  env.NB_SPEC = JSON.stringify(spec);
  env.NO_PROXY = env.no_proxy = "127.0.0.1,localhost";
  const stdout = await new Promise((resolve, reject) => {
    execFile("lua5.4", ["-e", LUA], { env, cwd: outDir, timeout: 20_000, maxBuffer: 1 << 20 },
      (err, out, errOut) => (err ? reject(new Error(`lua5.4 failed: ${err.message}\n${errOut}`)) : resolve(out)));
  });
  const out = JSON.parse(stdout);
  out.images = asArray(out.images);
  out.thought_kinds = asArray(out.thought_kinds);
  for (const im of out.images) {
    const buf = await readFile(im.path);
    assert.equal(buf.length, im.bytes, "bytes written by Lua");
    im.sha256 = sha256(buf);
    im.sniffed = sniff(buf);
  }
  return out;
}

const LUA_STREAM = String.raw`
local cjson = require "cjson"
local nb = require "nanobanana"
local spec = cjson.decode(os.getenv("NB_SPEC"))
local c = nb.new { base_url = spec.base_url, api_key = spec.api_key, auth = "x-goog-api-key" }
local out = { kinds = {}, images = {} }
local res, err = c:stream(spec.prompt, { model = spec.model, generationConfig = spec.generationConfig }, function(ev)
  out.kinds[#out.kinds + 1] = ev.type
  if ev.image then
    local p = spec.out_dir .. "/ev-" .. #out.kinds .. ".bin"
    local f = assert(io.open(p, "wb")); assert(f:write(ev.image.data)); assert(f:close())
    out.images[#out.images + 1] = p
  end
end)
if not res then io.stderr:write("stream failed: ", tostring(err), "\n"); os.exit(2) end
out.text = res.text or cjson.null
out.chunks = res.chunks
io.write(cjson.encode(out))
`;

async function runLua(script, spec) {
  const outDir = path.join(tmp, `lua-${++luaRuns}`);
  await mkdir(outDir);
  const env = { ...process.env };
  env.LUA_PATH = `${ROOT}/lua/?.lua;${ROOT}/lua/?/init.lua;;`;
  env.LUA_CPATH = `${ROOT}/build/?.so;;`;
  env.NB_SPEC = JSON.stringify({ ...spec, base_url: baseUrl, api_key: API_KEY, out_dir: outDir });
  env.NO_PROXY = env.no_proxy = "127.0.0.1,localhost";
  const stdout = await new Promise((resolve, reject) => {
    execFile("lua5.4", ["-e", script], { env, cwd: outDir, timeout: 20_000, maxBuffer: 1 << 20 },
      (err, out, errOut) => (err ? reject(new Error(`lua5.4 failed: ${err.message}\n${errOut}`)) : resolve(out)));
  });
  return JSON.parse(stdout);
}

/** Final (non-thought) images and thought parts of an SDK response. */
function sdkParts(response) {
  const parts = response.candidates?.[0]?.content?.parts ?? [];
  const images = [];
  let thoughts = 0;
  const texts = [];
  for (const p of parts) {
    if (p.thought === true) { thoughts++; continue; }
    if (p.inlineData) {
      const buf = Buffer.from(p.inlineData.data, "base64");
      images.push({ sha256: sha256(buf), bytes: buf.length, mimeType: p.inlineData.mimeType, buf });
    } else if (typeof p.text === "string") texts.push(p.text);
  }
  return { images, thoughts, text: texts.length ? texts.join("") : null };
}

// --------------------------------------------------------------------------- one logical call, both ways

/**
 * Runs the call through the SDK, then through nanobanana, with a fresh server
 * log, and checks everything that must agree.  Returns both sides.
 */
async function parity({ model, prompt, refs = [], imageConfig, thinkingConfig }) {
  await control("POST", "reset");

  // SDK
  const config = {};
  if (imageConfig) config.imageConfig = imageConfig;
  if (thinkingConfig) config.thinkingConfig = thinkingConfig;
  const response = await sdkGenerate({ model, prompt, images: refs.map((r) => r.buf), config });
  const sdk = sdkParts(response);
  let recs = await control("GET", "requests");
  assert.equal(recs.length, 1, "one request recorded for the SDK call");
  const sdkRec = recs[0];

  // nanobanana
  const generationConfig = thinkingConfig ? { thinkingConfig } : undefined;
  const lua = await nbGenerate({ model, prompt, imagePaths: refs.map((r) => r.path), imageConfig, generationConfig });
  recs = await control("GET", "requests");
  assert.equal(recs.length, 2, "one request recorded for the nanobanana call (no retry)");
  const nbRec = recs[1];

  // the server accepted both
  for (const [who, rec] of [["SDK", sdkRec], ["nanobanana", nbRec]]) {
    assert.equal(rec.status, 200, `${who} request status`);
    assert.equal(rec.fault, null, `${who} request fault`);
    assert.equal(rec.method, "POST", `${who} method`);
  }

  // same endpoint, same way of sending the key
  const expectedPath = `/v1beta/models/${model}:generateContent`;
  assert.equal(sdkRec.path, expectedPath, "SDK path");
  assert.equal(nbRec.path, sdkRec.path, "nanobanana path == SDK path");
  assert.equal(nbRec.version, sdkRec.version, "API version");
  assert.equal(nbRec.model, sdkRec.model, "model");
  assert.deepEqual(nbRec.query, sdkRec.query, "query string (no ?key=)");
  assert.equal(sdkRec.headers["x-goog-api-key"], API_KEY, "SDK sends x-goog-api-key");
  assert.equal(nbRec.headers["x-goog-api-key"], API_KEY, "nanobanana sends x-goog-api-key");
  assert.equal(sdkRec.headers.authorization, undefined, "SDK sends no Authorization header");
  assert.equal(nbRec.headers.authorization, undefined, "nanobanana sends no Authorization header");
  assert.match(nbRec.headers["content-type"], /^application\/json\b/, "nanobanana content-type");

  // same body, up to what the SDK adds on its own
  assert.deepEqual(nbRec.body, withoutSdkAdds(sdkRec.body), "request bodies (SDK minus SDK_ADDS vs nanobanana)");

  // same final images: bytes, declared MIME type, and what the server sent
  const finalFromServer = (rec) => rec.images.filter((i) => !i.thought);
  assert.ok(sdk.images.length >= 1, "SDK got a final image");
  assert.deepEqual(lua.images.map((i) => i.sha256), sdk.images.map((i) => i.sha256),
    "sha256 of nanobanana res.images[i].data == sha256 of SDK inlineData.data");
  assert.deepEqual(sdk.images.map((i) => i.sha256), finalFromServer(sdkRec).map((i) => i.sha256),
    "SDK images == what the server sent to the SDK");
  assert.deepEqual(lua.images.map((i) => i.sha256), finalFromServer(nbRec).map((i) => i.sha256),
    "nanobanana images == what the server sent to nanobanana");
  assert.deepEqual(lua.images.map((i) => i.declaredMimeType), sdk.images.map((i) => i.mimeType),
    "nanobanana declaredMimeType == SDK inlineData.mimeType");
  // nanobanana's mimeType is the sniffed one (the service declares JPEG as image/png)
  assert.deepEqual(lua.images.map((i) => i.mimeType), lua.images.map((i) => i.sniffed),
    "nanobanana mimeType == type sniffed from the bytes");
  assert.deepEqual(lua.images.map((i) => i.mimeType), finalFromServer(nbRec).map((i) => i.mime),
    "nanobanana mimeType == real type per the server");

  // same thoughts and text
  assert.equal(lua.thoughts, sdk.thoughts, "#res.thoughts == SDK thought part count");
  assert.equal(lua.text, sdk.text, "res.text == SDK non-thought text");

  return { sdk, lua, sdkRec, nbRec };
}

// --------------------------------------------------------------------------- tests

describe("nanobanana vs @google/genai against the fake server", { timeout: 60_000 }, () => {
  before(async () => {
    assert.ok(existsSync(path.join(ROOT, "build", "nanobanana", "core.so")),
      "nanobanana is not built: cmake -S . -B build && cmake --build build");
    tmp = await mkdtemp(path.join(os.tmpdir(), "nb-sdk-parity-"));
    baseUrl = await startServer();
  });

  after(async () => {
    await stopServer();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("(a) text-to-image, gemini-2.5-flash-image, aspectRatio 4:3", { timeout: 20_000 }, async () => {
    const { lua, sdkRec } = await parity({
      model: FLASH, prompt: "A cute baby sea otter floating on its back", imageConfig: { aspectRatio: "4:3" },
    });
    assert.equal(lua.images.length, 1);
    assert.equal(lua.images[0].mimeType, "image/png");
    assert.equal(sdkRec.images[0].width, 1184);
    assert.equal(sdkRec.images[0].height, 864);
    assert.equal(lua.thoughts, 0);
  });

  it("(b) image-to-image, gemini-2.5-flash-image, two reference images", { timeout: 20_000 }, async () => {
    // Reference images: two SDK text-to-image calls with different prompts.
    const refs = [];
    for (const [i, prompt] of ["a red lighthouse on a cliff", "a blue hot-air balloon"].entries()) {
      const r = sdkParts(await sdkGenerate({ model: FLASH, prompt, config: { imageConfig: { aspectRatio: "1:1" } } }));
      assert.equal(r.images.length, 1, "reference image generated");
      assert.equal(sniff(r.images[0].buf), "image/png", "reference image is a PNG");
      const p = path.join(tmp, `ref-${i + 1}.png`);
      await writeFile(p, r.images[0].buf);
      refs.push({ path: p, buf: r.images[0].buf, sha256: r.images[0].sha256 });
    }
    assert.notEqual(refs[0].sha256, refs[1].sha256, "the two references differ");

    const { lua, nbRec, sdkRec } = await parity({
      model: FLASH, prompt: "Put the balloon from the second image above the lighthouse in the first", refs,
    });
    // the SDK_ADDS entry this call exercises (config {} -> generationConfig {})
    assert.deepEqual(sdkRec.body.generationConfig, {}, "SDK sent an empty generationConfig");
    assert.equal("generationConfig" in nbRec.body, false, "nanobanana sent no generationConfig");
    // both references went out, in order, after the prompt text
    const parts = nbRec.body.contents[0].parts;
    assert.equal(parts.length, 3);
    assert.deepEqual(parts.slice(1).map((p) => p.inlineData.data.sha256), refs.map((r) => r.sha256));
    assert.equal(lua.images.length, 1);
  });

  it("(c) gemini-3-pro-image-preview, 16:9 2K, includeThoughts", { timeout: 20_000 }, async () => {
    const { lua, sdk, sdkRec } = await parity({
      model: PRO, prompt: "A neon-lit night market in the rain, cinematic",
      imageConfig: { aspectRatio: "16:9", imageSize: "2K" }, thinkingConfig: { includeThoughts: true },
    });
    assert.ok(sdk.thoughts > 0, "thought parts came back");
    assert.equal(lua.thoughts, sdk.thoughts);
    assert.ok(lua.thought_kinds.includes("text") && lua.thought_kinds.includes("image"),
      "nanobanana kept both the thought text and the draft image");
    assert.equal(lua.images.length, 1);
    // Gemini 3 answers JPEG bytes declared as image/png
    assert.equal(sdk.images[0].mimeType, "image/png");
    assert.equal(lua.images[0].declaredMimeType, "image/png");
    assert.equal(lua.images[0].mimeType, "image/jpeg");
    const final = sdkRec.images.find((i) => !i.thought);
    assert.deepEqual([final.width, final.height], [2752, 1536]);
  });

  it("(d) streaming: generateContentStream vs client:stream, gemini-3-pro, includeThoughts", { timeout: 20_000 }, async () => {
    await control("POST", "reset");
    const prompt = "A cozy reading nook by a rainy window";
    const config = { thinkingConfig: { includeThoughts: true } };
    const stream = await sdkClient().models.generateContentStream({
      model: PRO, contents: [{ role: "user", parts: [{ text: prompt }] }], config });
    const sdkKinds = [], sdkImages = [], sdkTexts = [];
    for await (const chunk of stream) {
      for (const p of chunk.candidates?.[0]?.content?.parts ?? []) {
        sdkKinds.push(p.thought ? "thought" : p.inlineData ? "image" : "text");
        if (p.inlineData) sdkImages.push(sha256(Buffer.from(p.inlineData.data, "base64")));
        else if (!p.thought && typeof p.text === "string") sdkTexts.push(p.text);
      }
    }
    const lua = await runLua(LUA_STREAM, { model: PRO, prompt, generationConfig: config });
    const recs = await control("GET", "requests");
    assert.equal(recs.length, 2, "one request each");
    const [sdkRec, nbRec] = recs;
    for (const rec of recs) {
      assert.equal(rec.status, 200);
      assert.equal(rec.path, `/v1beta/models/${PRO}:streamGenerateContent`);
      assert.deepEqual(rec.query, { alt: "sse" });
    }
    assert.deepEqual(nbRec.body, withoutSdkAdds(sdkRec.body), "request bodies");
    // the same parts in the same order, the same image bytes
    assert.deepEqual(asArray(lua.kinds), sdkKinds, "event kinds, in order");
    const luaImages = [];
    for (const p of asArray(lua.images)) luaImages.push(sha256(await readFile(p)));
    assert.deepEqual(luaImages, sdkImages, "image bytes, in order (thought draft, final)");
    assert.deepEqual(sdkRec.images.map((i) => i.sha256), sdkImages, "SDK images == what the server sent");
    assert.deepEqual(nbRec.images.map((i) => i.sha256), luaImages, "nanobanana images == what the server sent");
    assert.equal(lua.text, sdkTexts.join(""), "merged text");
    assert.equal(lua.chunks, sdkKinds.length, "one event per part here");
  });
  // ------------------------------------------------------------------------- service calls

  it("(e) files.upload vs client:upload: the same resumable exchanges, the same file", { timeout: 30_000 }, async () => {
    const size = 2 * 8 * 1024 * 1024 + 4321;
    const file = path.join(tmp, "upload.bin");
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4096) bytes.writeUInt32LE((i * 2654435761) >>> 0, i);
    await writeFile(file, bytes);
    await control("POST", "reset");
    const sdkFile = await sdkClient().files.upload({ file, config: { mimeType: "application/octet-stream", displayName: "up" } });
    const sdkRecs = (await control("GET", "requests")).filter((r) => r.service === "files");
    await control("POST", "reset");
    const lua = await runLua(String.raw`
      local cjson = require "cjson"
      local nb = require "nanobanana"
      local spec = cjson.decode(os.getenv("NB_SPEC"))
      local c = nb.new { base_url = spec.base_url, api_key = spec.api_key, auth = "x-goog-api-key" }
      local f = assert(c:upload(spec.file, { mimeType = "application/octet-stream", displayName = "up" }))
      io.write(cjson.encode { name = f.name, sizeBytes = f.sizeBytes, sha256Hash = f.sha256Hash, mimeType = f.mimeType })
    `, { file });
    const nbRecs = (await control("GET", "requests")).filter((r) => r.service === "files");
    assert.equal(nbRecs.length, sdkRecs.length, "as many exchanges");
    assert.equal(nbRecs.length, 4, "start + 3 chunks of at most 8 MiB");
    const [s0, n0] = [sdkRecs[0], nbRecs[0]];
    assert.equal(n0.path, s0.path, "start path");
    for (const h of ["x-goog-upload-protocol", "x-goog-upload-command", "x-goog-upload-header-content-length",
                     "x-goog-upload-header-content-type", "x-goog-api-key"]) {
      assert.equal(n0.headers[h], s0.headers[h], `start header ${h}`);
    }
    assert.deepEqual(n0.body, s0.body, "start body ({file: {displayName, mimeType, sizeBytes}})");
    for (let i = 1; i < sdkRecs.length; i++) {
      const [a, b] = [sdkRecs[i], nbRecs[i]];
      assert.equal(b.path, a.path, `chunk ${i} path`);
      assert.equal(b.headers["x-goog-upload-offset"], a.headers["x-goog-upload-offset"], `chunk ${i} offset`);
      assert.equal(b.headers["x-goog-upload-command"], a.headers["x-goog-upload-command"], `chunk ${i} command`);
      assert.equal(b.content_length, a.content_length, `chunk ${i} size`);
      assert.equal(b.status, 200);
    }
    assert.equal(lua.sizeBytes, Number(sdkFile.sizeBytes));
    assert.equal(lua.sha256Hash, sdkFile.sha256Hash);
    assert.equal(lua.mimeType, sdkFile.mimeType);
  });

  it("(f) models.countTokens vs client:count_tokens", { timeout: 20_000 }, async () => {
    await control("POST", "reset");
    const sdk = await sdkClient().models.countTokens({ model: PRO, contents: "how many tokens is this?" });
    const lua = await runLua(String.raw`
      local cjson = require "cjson"
      local nb = require "nanobanana"
      local spec = cjson.decode(os.getenv("NB_SPEC"))
      local c = nb.new { base_url = spec.base_url, api_key = spec.api_key, auth = "x-goog-api-key" }
      io.write(cjson.encode(assert(c:count_tokens("how many tokens is this?", { model = spec.model }))))
    `, { model: PRO });
    const [a, b] = await control("GET", "requests");
    assert.equal(b.path, a.path, "path");
    assert.equal(a.path, `/v1beta/models/${PRO}:countTokens`);
    assert.deepEqual(b.body, a.body, "body ({contents})");
    assert.equal(lua.totalTokens, sdk.totalTokens);
  });

  it("(g) batches.create / batches.get vs client:batch / job:refresh (inline)", { timeout: 20_000 }, async () => {
    await control("POST", "reset");
    const prompts = ["a red kite", "a green kite"];
    const ai = sdkClient();
    const job = await ai.batches.create({
      model: FLASH,
      src: prompts.map((t, i) => ({ contents: [{ role: "user", parts: [{ text: t }] }], metadata: { key: String(i + 1) } })),
      config: { displayName: "kites" },
    });
    await ai.batches.get({ name: job.name });
    const lua = await runLua(String.raw`
      local cjson = require "cjson"
      local nb = require "nanobanana"
      local spec = cjson.decode(os.getenv("NB_SPEC"))
      local c = nb.new { base_url = spec.base_url, api_key = spec.api_key, auth = "x-goog-api-key" }
      local job = assert(c:batch(spec.prompts, { model = spec.model, display_name = "kites" }))
      assert(job:refresh())
      io.write(cjson.encode { name = job.name, state = job.state })
    `, { model: FLASH, prompts });
    const recs = await control("GET", "requests");
    assert.equal(recs.length, 4);
    const [sc, sg, nc, ng] = recs;
    assert.equal(nc.path, sc.path, "create path");
    assert.equal(sc.path, `/v1beta/models/${FLASH}:batchGenerateContent`);
    assert.deepEqual(nc.body, sc.body, "create body");
    assert.equal(sg.method, "GET");
    assert.equal(ng.method, "GET");
    assert.equal(sg.path, `/v1beta/${job.name}`);
    assert.equal(ng.path, `/v1beta/${lua.name}`);
    assert.match(lua.state, /^BATCH_STATE_/);
  });

  it("(h) Vertex AI: express mode (key) and a project with an OAuth token", { timeout: 20_000 }, async () => {
    await control("POST", "reset");
    const prompt = "an otter in a kelp forest";
    // express mode: an API key, no project
    const express = new GoogleGenAI({ vertexai: true, apiKey: API_KEY, httpOptions: { baseUrl, apiVersion: "v1" } });
    await express.models.generateContent({ model: FLASH, contents: prompt });
    // a project: an OAuth client holding a token (no refresh, no network)
    const { OAuth2Client } = await import("google-auth-library");
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: "ya29.test-token", expiry_date: Date.now() + 3600_000 });
    const projected = new GoogleGenAI({ vertexai: true, project: "proj-1", location: "us-central1",
      googleAuthOptions: { authClient }, httpOptions: { baseUrl, apiVersion: "v1" } });
    await projected.models.generateContent({ model: FLASH, contents: prompt });
    await runLua(String.raw`
      local cjson = require "cjson"
      local nb = require "nanobanana"
      local spec = cjson.decode(os.getenv("NB_SPEC"))
      local x = nb.new { vertex = true, api_key = spec.api_key, base_url = spec.base_url }
      assert(x:generate(spec.prompt, { model = spec.model }))
      local p = nb.new { vertex = { project = "proj-1", location = "us-central1" }, access_token = "ya29.test-token",
                         base_url = spec.base_url }
      assert(p:generate(spec.prompt, { model = spec.model }))
      io.write("{}")
    `, { model: FLASH, prompt });
    const [se, sp, ne, np] = await control("GET", "requests");
    assert.equal(se.path, `/v1/publishers/google/models/${FLASH}:generateContent`);
    assert.equal(ne.path, se.path, "express path");
    assert.equal(ne.headers["x-goog-api-key"], API_KEY);
    assert.equal(se.headers["x-goog-api-key"], API_KEY);
    assert.equal(sp.path, `/v1/projects/proj-1/locations/us-central1/publishers/google/models/${FLASH}:generateContent`);
    assert.equal(np.path, sp.path, "project path");
    assert.equal(sp.headers.authorization, "Bearer ya29.test-token");
    assert.equal(np.headers.authorization, sp.headers.authorization, "Bearer token");
    for (const [a, b] of [[se, ne], [sp, np]]) {
      assert.equal(a.status, 200);
      assert.equal(b.status, 200);
      assert.deepEqual(b.body, withoutSdkAdds(a.body), "body");
    }
  });
});
