// Official JS SDK: N concurrent generateContent calls with Promise.all, each
// image written to OUTDIR/sdk-<i>.png.
//   node sdk_many.mjs BASE_URL MODEL PROMPT OUTDIR N
import { GoogleGenAI } from "@google/genai";
import { writeFileSync } from "node:fs";

const [baseUrl, model, prompt, outdir, n] = process.argv.slice(2);
const t0 = performance.now();
const ai = new GoogleGenAI({ apiKey: "test-key", httpOptions: { baseUrl } });
const one = async (i) => {
  const response = await ai.models.generateContent({ model, contents: prompt });
  let b64 = null;
  for (const part of response.candidates[0].content.parts) {
    if (part.inlineData && !part.thought) b64 = part.inlineData.data;
  }
  if (b64 === null) throw new Error(`no image in response ${i}`);
  writeFileSync(`${outdir}/sdk-${i}.png`, Buffer.from(b64, "base64"));
};
await Promise.all(Array.from({ length: Number(n) }, (_, i) => one(i + 1)));
console.log(`elapsed=${((performance.now() - t0) / 1000).toFixed(6)}`);
