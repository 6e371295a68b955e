// Voice on tandem's own server: dictation into the composer, reading answers aloud, and a
// hands-free voice mode (speak; the message is sent when you stop; the answer is read aloud;
// it listens again). Audio goes only to this server's /v1/audio routes, where Whisper and a
// Piper voice run; the browser's Web Speech API would send it to a third-party service.
//
//   const voice = initVoice({ micBtn, voiceBtn, statusEl, input, send });
//   voice.readAloud(markdown, button);
//
// chat_stream.js dispatches `tandem:answer-done` on document at the end of every turn, with
// `detail.text` the answer (null when there is none to read: stopped, failed, a comparison).
import { request, toast } from "./api.js";

const TRANSCRIBE = "/v1/audio/transcriptions";
const SPEAK = "/v1/audio/speech";
const MAX_DICTATION_MS = 120_000;
// Voice mode's end-of-speech detection: the loudness (RMS) of 50 ms frames against a noise
// floor learned while nobody speaks. Speech is 200 ms above the threshold; the utterance ends
// after 1.2 s below it.
const FRAME_MS = 50;
const MIN_LEVEL = 0.015;
const LEVEL_OVER_FLOOR = 3;
const SPEECH_START_MS = 200;
const SPEECH_END_MS = 1200;
const MAX_UTTERANCE_MS = 60_000;
const IDLE_RESTART_MS = 15_000; // a recording with no speech in it is dropped and restarted
const SPEECH_CHUNK_CHARS = 400;

export const canRecord = Boolean(navigator.mediaDevices?.getUserMedia && window.MediaRecorder);

const STATUS_TEXT = {
  listening: "Listening…",
  hearing: "Hearing you…",
  transcribing: "Transcribing…",
  thinking: "Thinking…",
  speaking: "Speaking…",
};

function micMessage(err) {
  if (err?.name === "NotAllowedError") return "Allow the microphone to use your voice.";
  if (err?.name === "NotFoundError") return "No microphone was found.";
  return "Couldn't use the microphone.";
}

function openMic() {
  return navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 } });
}

function closeMic(stream) {
  for (const track of stream?.getTracks() || []) track.stop();
}

// What MediaRecorder can make here: WebM/Opus (Chromium, Firefox), Ogg, or MP4 (Safari).
function recordingType() {
  return ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"].find((t) => MediaRecorder.isTypeSupported(t)) || "";
}

// One recording of a stream; stop() resolves to its Blob.
class Recording {
  constructor(stream) {
    const type = recordingType();
    this.recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
    const chunks = [];
    this.recorder.addEventListener("dataavailable", (e) => { if (e.data.size) chunks.push(e.data); });
    this.done = new Promise((resolve) => {
      this.recorder.addEventListener("stop", () => resolve(new Blob(chunks, { type: this.recorder.mimeType || type })));
    });
    this.recorder.start();
  }

  stop() {
    if (this.recorder.state !== "inactive") this.recorder.stop();
    return this.done;
  }
}

export async function transcribe(blob) {
  const ext = (blob.type.split("/")[1] || "webm").split(";")[0];
  const form = new FormData();
  form.append("file", blob, `speech.${ext}`);
  form.append("model", "whisper-1");
  const response = await request("POST", TRANSCRIBE, { body: form });
  return ((await response.json()).text || "").trim();
}

// Markdown to the words a person would say: code is mentioned, not read; links read as their
// text; citation marks and formatting characters are dropped; headings and list items pause.
export function speakable(markdown) {
  return markdown
    .replace(/```[\s\S]*?(```|$)/g, " (code block) ")
    .replace(/\$\$[\s\S]*?\$\$/g, " (formula) ")
    .replace(/`([^`]*)`/g, "$1")
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[\d+\]/g, "")
    .replace(/^\s{0,3}(#{1,6}|>|[-*+]|\d+[.)])\s+/gm, "")
    .replace(/[*_~#|]/g, "")
    .replace(/([^.!?:;,\s])[ \t]*\n/g, "$1.\n") // a heading or list item ends like a sentence
    .replace(/\s+([.,!?])/g, "$1")
    .replace(/\s+/g, " ")
    .trim();
}

// Text cut at sentence ends into pieces of about `max` characters: the first piece is
// spoken after a fraction of a second, while the rest are made as it plays.
export function speechChunks(text, max = SPEECH_CHUNK_CHARS) {
  const sentences = text.match(/[^.!?;:]+(?:[.!?;:]+["')\]]*\s*|$)/g) || [];
  const chunks = [];
  let current = "";
  for (const sentence of sentences) {
    if (current && current.length + sentence.length > max) {
      chunks.push(current.trim());
      current = "";
    }
    current += sentence;
    while (current.length > max * 2) { // one endless sentence: cut it at a space
      const cut = current.lastIndexOf(" ", max) > 0 ? current.lastIndexOf(" ", max) : max;
      chunks.push(current.slice(0, cut).trim());
      current = current.slice(cut);
    }
  }
  if (current.trim()) chunks.push(current.trim());
  return chunks;
}

async function fetchSpeech(text, signal) {
  const response = await request("POST", SPEAK, { json: { model: "tts-1", input: text, voice: "alloy", response_format: "wav" }, signal });
  return response.blob();
}

// Plays the server's speech for one text at a time; say() resolves true when all of it was
// heard, false when stop() (or another say()) cut it short.
class Speaker {
  constructor() {
    this.audio = new Audio();
    this.run = 0;
    this.controller = null;
    this.endPlayback = null;
  }

  async say(text) {
    this.stop();
    const run = ++this.run;
    const controller = new AbortController();
    this.controller = controller;
    const pieces = speechChunks(speakable(text));
    const fetchPiece = (i) => {
      const p = fetchSpeech(pieces[i], controller.signal);
      p.catch(() => {}); // a prefetch abandoned by stop() must not surface as an error
      return p;
    };
    let next = pieces.length ? fetchPiece(0) : null;
    for (let i = 0; i < pieces.length; i++) {
      let blob;
      try {
        blob = await next;
      } catch (err) {
        if (err.name === "AbortError" || run !== this.run) return false;
        throw err;
      }
      if (run !== this.run) return false;
      next = i + 1 < pieces.length ? fetchPiece(i + 1) : null;
      await this.play(blob);
      if (run !== this.run) return false;
    }
    return true;
  }

  play(blob) {
    return new Promise((resolve) => {
      const url = URL.createObjectURL(blob);
      const done = () => {
        this.audio.onended = this.audio.onerror = null;
        this.endPlayback = null;
        URL.revokeObjectURL(url);
        resolve();
      };
      this.endPlayback = done;
      this.audio.onended = this.audio.onerror = done;
      this.audio.src = url;
      this.audio.play().catch(done);
    });
  }

  stop() {
    this.run++;
    this.controller?.abort();
    this.controller = null;
    this.audio.pause();
    this.endPlayback?.();
  }
}

// Hands-free: listen, send what was said when the speaker stops, read the answer, listen again.
class VoiceMode {
  constructor({ speaker, send, onState }) {
    this.speaker = speaker;
    this.send = send;
    this.onState = onState;
    this.state = "off";
  }

  get active() {
    return this.state !== "off";
  }

  setState(state) {
    this.state = state;
    this.onState(state);
  }

  async start() {
    try {
      this.stream = await openMic();
    } catch (err) {
      toast(micMessage(err), "error");
      return;
    }
    this.context = new AudioContext();
    await this.context.resume();
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 1024;
    this.context.createMediaStreamSource(this.stream).connect(this.analyser);
    this.frame = new Float32Array(this.analyser.fftSize);
    this.floor = MIN_LEVEL / LEVEL_OVER_FLOOR;
    this.timer = setInterval(() => this.tick(), FRAME_MS);
    this.listen();
  }

  stop() {
    clearInterval(this.timer);
    this.recording?.stop();
    this.recording = null;
    this.speaker.stop();
    closeMic(this.stream);
    this.context?.close();
    this.stream = this.context = null;
    this.setState("off");
  }

  listen() {
    this.recording?.stop();
    this.recording = new Recording(this.stream);
    this.recordingSince = performance.now();
    this.voicedMs = this.silentMs = 0;
    this.setState("listening");
  }

  level() {
    this.analyser.getFloatTimeDomainData(this.frame);
    let sum = 0;
    for (const x of this.frame) sum += x * x;
    return Math.sqrt(sum / this.frame.length);
  }

  tick() {
    if (this.state !== "listening" && this.state !== "hearing") return;
    const level = this.level();
    const loud = level > Math.max(MIN_LEVEL, this.floor * LEVEL_OVER_FLOOR);
    if (this.state === "listening") {
      if (loud) {
        this.voicedMs += FRAME_MS;
        if (this.voicedMs >= SPEECH_START_MS) { this.setState("hearing"); this.heardSince = performance.now(); }
      } else {
        this.voicedMs = 0;
        this.floor = this.floor * 0.95 + level * 0.05;
        if (performance.now() - this.recordingSince > IDLE_RESTART_MS) this.listen();
      }
      return;
    }
    this.silentMs = loud ? 0 : this.silentMs + FRAME_MS;
    if (this.silentMs >= SPEECH_END_MS || performance.now() - this.heardSince > MAX_UTTERANCE_MS) this.utteranceEnded();
  }

  async utteranceEnded() {
    this.setState("transcribing");
    const recording = this.recording;
    this.recording = null;
    let text = "";
    try {
      text = await transcribe(await recording.stop());
    } catch (err) {
      if (this.active) toast(err.message, "error");
    }
    if (!this.active) return;
    if (!text) { this.listen(); return; }
    this.setState("thinking");
    await this.send(text);
    // No answer-done came (the message could not be sent): listen again.
    if (this.state === "thinking") this.listen();
  }

  async answerDone(text) {
    if (this.state !== "thinking") return;
    if (text) {
      this.setState("speaking");
      try {
        await this.speaker.say(text);
      } catch (err) {
        toast(err.message, "error");
      }
    }
    if (this.state === "speaking" || this.state === "thinking") this.listen();
  }
}

export function initVoice({ micBtn, voiceBtn, statusEl, input, send }) {
  const speaker = new Speaker();
  let speakingBtn = null;
  let dictation = null; // {stream, recording, timer}

  const showState = (state) => {
    const on = state !== "off";
    voiceBtn.setAttribute("aria-pressed", String(on));
    voiceBtn.setAttribute("aria-label", on ? "Stop voice mode" : "Voice mode");
    statusEl.hidden = !on;
    statusEl.dataset.state = state;
    statusEl.textContent = STATUS_TEXT[state] || "";
    micBtn.disabled = on;
  };
  const mode = new VoiceMode({ speaker, send, onState: showState });

  async function startDictation() {
    let stream;
    try {
      stream = await openMic();
    } catch (err) {
      toast(micMessage(err), "error");
      return;
    }
    dictation = { stream, recording: new Recording(stream), timer: setTimeout(stopDictation, MAX_DICTATION_MS) };
    micBtn.classList.add("recording");
    micBtn.setAttribute("aria-label", "Stop dictation");
    voiceBtn.disabled = true;
  }

  async function stopDictation() {
    if (!dictation) return;
    const { stream, recording, timer } = dictation;
    dictation = null;
    clearTimeout(timer);
    micBtn.classList.remove("recording");
    micBtn.classList.add("busy");
    micBtn.setAttribute("aria-label", "Transcribing");
    micBtn.disabled = true;
    try {
      const blob = await recording.stop();
      closeMic(stream);
      const text = await transcribe(blob);
      if (text) {
        input.value = input.value ? `${input.value.replace(/\s*$/, " ")}${text}` : text;
        input.dispatchEvent(new Event("input", { bubbles: true })); // chat_composer.js resizes and enables Send
        input.focus();
      } else {
        toast("No speech was heard.");
      }
    } catch (err) {
      toast(err.message, "error");
    } finally {
      closeMic(stream);
      micBtn.classList.remove("busy");
      micBtn.setAttribute("aria-label", "Dictate");
      micBtn.disabled = false;
      voiceBtn.disabled = false;
    }
  }

  if (canRecord) {
    micBtn.hidden = false;
    voiceBtn.hidden = false;
    micBtn.addEventListener("click", () => (dictation ? stopDictation() : startDictation()));
    voiceBtn.addEventListener("click", () => {
      if (mode.active) mode.stop();
      else {
        readAloudStop();
        mode.start();
      }
    });
    document.addEventListener("tandem:answer-done", (e) => mode.answerDone(e.detail?.text || null));
  }

  function readAloudStop() {
    speaker.stop();
    speakingBtn?.classList.remove("speaking");
    speakingBtn = null;
  }

  async function readAloud(text, button) {
    if (mode.active) return; // voice mode owns the speaker
    const again = speakingBtn === button;
    readAloudStop();
    if (again) return; // a second click stops
    speakingBtn = button;
    button.classList.add("speaking");
    try {
      await speaker.say(text);
    } catch (err) {
      toast(err.message, "error");
    } finally {
      if (speakingBtn === button) {
        button.classList.remove("speaking");
        speakingBtn = null;
      }
    }
  }

  return { readAloud, stopVoiceMode: () => mode.active && mode.stop() };
}
