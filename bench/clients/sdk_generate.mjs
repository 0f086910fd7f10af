// Official JS SDK (@google/genai) benchmark client: one generateContent call.
//   node sdk_generate.mjs MODE BASE_URL MODEL PROMPT OUT [IMAGE...]
// MODE: memory (text prompt) | req (IMAGEs read from files, sent as base64
// inlineData parts). The final image part's inlineData.data is written to OUT
// with Buffer.from(b64, 'base64').
// Prints "elapsed=<s>" on success.
import { GoogleGenAI } from "@google/genai";
import { readFileSync, writeFileSync } from "node:fs";

const [mode, baseUrl, model, prompt, out, ...images] = process.argv.slice(2);
const t0 = performance.now();
const ai = new GoogleGenAI({ apiKey: "test-key", httpOptions: { baseUrl } });

let contents = prompt;
if (mode === "req") {
  const parts = [{ text: prompt }];
  for (const p of images) {
    parts.push({ inlineData: { mimeType: "image/png", data: readFileSync(p).toString("base64") } });
  }
  contents = [{ role: "user", parts }];
} else if (mode !== "memory") {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

const response = await ai.models.generateContent({ model, contents });
const parts = response.candidates[0].content.parts;
let b64 = null;
for (const part of parts) {
  if (part.inlineData && !part.thought) b64 = part.inlineData.data;
}
if (b64 === null) {
  console.error("no image in the response");
  process.exit(1);
}
writeFileSync(out, Buffer.from(b64, "base64"));
console.log(`elapsed=${((performance.now() - t0) / 1000).toFixed(6)}`);
