// Official JS SDK (@google/genai) benchmark client: one generateContentStream
// call with thoughts. The final (non-thought) image part is written to OUT.
//   node sdk_stream.mjs BASE_URL MODEL PROMPT OUT
// Prints "first_event=<s> elapsed=<s> events=<n>".
import { GoogleGenAI } from "@google/genai";
import { writeFileSync } from "node:fs";

const [baseUrl, model, prompt, out] = process.argv.slice(2);
const t0 = performance.now();
const ai = new GoogleGenAI({ apiKey: "test-key", httpOptions: { baseUrl } });
const stream = await ai.models.generateContentStream({
  model, contents: prompt, config: { thinkingConfig: { includeThoughts: true } } });
let first = null, events = 0, b64 = null;
for await (const chunk of stream) {
  for (const part of chunk.candidates?.[0]?.content?.parts ?? []) {
    events++;
    if (first === null) first = (performance.now() - t0) / 1000;
    if (part.inlineData && !part.thought) b64 = part.inlineData.data;
  }
}
if (b64 === null) {
  console.error("no image in the stream");
  process.exit(1);
}
writeFileSync(out, Buffer.from(b64, "base64"));
console.log(`first_event=${first.toFixed(6)} elapsed=${((performance.now() - t0) / 1000).toFixed(6)} events=${events}`);
