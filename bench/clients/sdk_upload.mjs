// Official JS SDK (@google/genai) benchmark client: files.upload of FILE.
//   node sdk_upload.mjs BASE_URL FILE
// Prints "sha256Hash=<base64> elapsed=<s>".
import { GoogleGenAI } from "@google/genai";

const [baseUrl, file] = process.argv.slice(2);
const t0 = performance.now();
const ai = new GoogleGenAI({ apiKey: "test-key", httpOptions: { baseUrl } });
const f = await ai.files.upload({ file, config: { mimeType: "application/octet-stream" } });
console.log(`sha256Hash=${f.sha256Hash} elapsed=${((performance.now() - t0) / 1000).toFixed(6)}`);
