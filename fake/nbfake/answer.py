"""Answers: model parts, images, thoughts, usage metadata."""

import hashlib

from .faults import FINISH_MESSAGE_PROHIBITED, FINISH_MESSAGE_SAFETY
from .fixtures import noise_image, pattern_image
from .state import SIGNATURES
from .util import parse_bytes

class Answer:
    """A generated (or faulted) model answer before rendering."""

    def __init__(self):
        self.chunks = []            # parts grouped per SSE event
        self.finish_reason = "STOP"
        self.finish_message = None
        self.prompt_feedback = None
        self.has_candidate = True
        self.usage_only = False
        self.usage = {}
        self.images = []            # record entries for images sent
        self.extra_candidate = {}   # more candidate fields (echo_key)


class Generator:
    """Builds answers for validated requests (images, text, signatures)."""

    def __init__(self, noise_bytes=0):
        self.noise_bytes = noise_bytes

    def final_image(self, plan, huge=None):
        """The final image: pattern PNG/JPEG, or noise PNG when configured."""
        if huge:
            return noise_image(huge, "huge:%d" % huge)
        if self.noise_bytes:
            # Not seeded by the prompt: benchmarks with distinct prompts
            # still hit the cache instead of encoding N-MB images each time.
            return noise_image(self.noise_bytes, "noise|%s|%s|%s" % (
                plan.model.name, plan.ratio, plan.size))
        kind = "jpeg" if plan.model.gemini3 else "png"
        return pattern_image(kind, plan.width, plan.height, plan.seed)

    @staticmethod
    def draft_image(plan):
        """The interim 'thought' image: half-size JPEG."""
        return pattern_image("jpeg", max(8, plan.width // 2),
                             max(8, plan.height // 2), plan.seed + "|draft")

    def answer(self, plan, body, fault=None):
        """Build the Answer for a plan, applying content faults."""
        name = fault.name if fault else None
        ans = Answer()
        if name in ("image_safety", "prohibited", "no_image"):
            ans.finish_reason = {"image_safety": "IMAGE_SAFETY",
                                 "prohibited": "IMAGE_PROHIBITED_CONTENT",
                                 "no_image": "NO_IMAGE"}[name]
            if name != "no_image":
                ans.finish_message = (FINISH_MESSAGE_SAFETY
                                      if name == "image_safety"
                                      else FINISH_MESSAGE_PROHIBITED)
        elif name == "blocked_prompt":
            ans.has_candidate = False
            ans.prompt_feedback = {"blockReason": "SAFETY", "safetyRatings": [
                {"category": c, "probability": p} for c, p in (
                    ("HARM_CATEGORY_SEXUALLY_EXPLICIT", "NEGLIGIBLE"),
                    ("HARM_CATEGORY_HATE_SPEECH", "NEGLIGIBLE"),
                    ("HARM_CATEGORY_HARASSMENT", "NEGLIGIBLE"),
                    ("HARM_CATEGORY_DANGEROUS_CONTENT", "HIGH"))]}
        elif name == "no_candidates":
            ans.has_candidate = False
            ans.usage_only = True
        elif name == "text_only":
            ans.chunks = [[self._text_part(
                plan, "I can describe it instead: %s" % plan.prompt[:200],
                True)]]
        else:
            self._normal_chunks(plan, body, ans, fault)
            if name == "safety_with_image":
                ans.finish_reason = "IMAGE_SAFETY"
                ans.finish_message = FINISH_MESSAGE_SAFETY
            elif name == "unknown_finish":
                ans.finish_reason = "SOMETHING_NEW"
        ans.usage = self._usage(plan, ans)
        return ans

    def _normal_chunks(self, plan, body, ans, fault):
        """Thoughts (Gemini 3, includeThoughts), text, then the image."""
        name = fault.name if fault else None
        transform = None
        if name == "escaped":
            def transform(b64):
                return b64.replace(b"/", b"\\/")
        elif name == "invalid_base64":
            def transform(b64):
                mid = len(b64) // 2
                return b"**" + b64[2:mid] + b"*" + b64[mid + 1:]
        if plan.model.gemini3 and plan.include_thoughts:
            ans.chunks.append([{"text": self._thought_text(plan),
                                "thought": True}])
            draft = self.draft_image(plan)
            ans.chunks.append([self._image_part(body, ans, draft, True, None,
                                                None)])
        if plan.want_text or not plan.want_image:
            text = ("Here is your image." if plan.want_image else
                    "Here is a description of the image you asked for: %s"
                    % plan.prompt[:200])
            ans.chunks.append([self._text_part(plan, text, True)])
        if plan.want_image:
            huge = parse_bytes(fault.arg, 64 << 20) if name == "huge" else None
            image = self.final_image(plan, huge)
            sig = SIGNATURES.issue() if plan.model.gemini3 else None
            ans.chunks.append([self._image_part(body, ans, image, False, sig,
                                                transform)])

    @staticmethod
    def _text_part(plan, text, first):
        part = {"text": text}
        if plan.model.gemini3 and first:
            part["thoughtSignature"] = SIGNATURES.issue()
        return part

    @staticmethod
    def _thought_text(plan):
        return ("**Composing the scene**\n\nI'm planning a %s composition at "
                "%dx%d for the request: \"%s\". I'll sketch a quick draft "
                "first, then refine colours and lighting."
                % (plan.ratio, plan.width, plan.height, plan.prompt[:120]))

    @staticmethod
    def _image_part(body, ans, image, thought, sig, transform):
        """An inlineData part (declared image/png, as the service does)."""
        data = transform(image.b64) if transform else image.b64
        part = {"inlineData": {"mimeType": "image/png",
                               "data": body.blob(data)}}
        if thought:
            part["thought"] = True
        if sig:
            part["thoughtSignature"] = sig
        ans.images.append({
            "sha256": image.sha256, "bytes": len(image.data),
            "width": image.width, "height": image.height, "mime": image.mime,
            "declared": "image/png", "thought": thought,
            "thoughtSignature": sig})
        return part

    @staticmethod
    def _usage(plan, ans):
        """usageMetadata per the guide's token table (input side approximated)."""
        text_in = max(1, -(-plan.text_chars // 4))
        img_in = plan.input_images * (1120 if plan.model.gemini3 else 258)
        prompt = text_in + img_in
        usage = {"promptTokenCount": prompt}
        details = [{"modality": "TEXT", "tokenCount": text_in}]
        if img_in:
            details.append({"modality": "IMAGE", "tokenCount": img_in})
        out_img = out_text = 0
        for chunk in ans.chunks:
            for part in chunk:
                if part.get("thought"):
                    continue
                if "inlineData" in part:
                    out_img += plan.model.image_tokens[plan.size]
                elif "text" in part:
                    out_text += max(1, -(-len(part["text"]) // 4))
        thoughts = 0
        if plan.model.gemini3 and ans.has_candidate:
            digest = hashlib.sha256(plan.seed.encode("utf-8", "replace"))
            thoughts = 100 + int(digest.hexdigest()[:4], 16) % 400
        if ans.chunks:
            usage["candidatesTokenCount"] = out_img + out_text
        usage["totalTokenCount"] = prompt + out_img + out_text + thoughts
        usage["promptTokensDetails"] = details
        cand = []
        if out_img:
            cand.append({"modality": "IMAGE", "tokenCount": out_img})
        if out_text:
            cand.append({"modality": "TEXT", "tokenCount": out_text})
        if cand:
            usage["candidatesTokensDetails"] = cand
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage


def answer_object(ans, plan, response_id, parts=None, final=True):
    """One GenerateContentResponse object (whole answer or one SSE event)."""
    if ans.usage_only:
        return {"usageMetadata": ans.usage}
    obj = {}
    if ans.has_candidate:
        if parts is None:
            parts = [p for chunk in ans.chunks for p in chunk]
        content = {"role": "model"}
        if parts:
            content = {"parts": parts, "role": "model"}
        cand = {"content": content}
        if final:
            cand["finishReason"] = ans.finish_reason
            if ans.finish_message:
                cand["finishMessage"] = ans.finish_message
        cand["index"] = 0
        cand.update(ans.extra_candidate)
        obj["candidates"] = [cand]
    if ans.prompt_feedback:
        obj["promptFeedback"] = ans.prompt_feedback
    if final:
        obj["usageMetadata"] = ans.usage
    else:
        prompt = ans.usage["promptTokenCount"]
        obj["usageMetadata"] = {"promptTokenCount": prompt,
                                "totalTokenCount": prompt}
    obj["modelVersion"] = plan.model_id
    obj["responseId"] = response_id
    return obj
