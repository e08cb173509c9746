"""Home Assistant's side of the Wyoming protocol, as the real `wyoming` package speaks it.

    python3 tests/wyoming_client.py HOST PORT describe
    python3 tests/wyoming_client.py HOST PORT transcribe FILE.wav
    python3 tests/wyoming_client.py HOST PORT synthesize TEXT OUT.wav
    python3 tests/wyoming_client.py HOST PORT synthesize-streaming TEXT OUT.wav
    python3 tests/wyoming_client.py HOST PORT handle TEXT...

Each request is its own connection, as Home Assistant makes them. Prints one JSON object with
what came back and how long it took.
"""

import asyncio
import json
import sys
import time
import uuid
import wave

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.handle import Handled, NotHandled
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)

TIMEOUT = 60


async def describe(host, port):
    async with AsyncTcpClient(host, port) as client:
        start = time.monotonic()
        await client.write_event(Describe().event())
        event = await asyncio.wait_for(client.read_event(), 1.0)
        took = time.monotonic() - start
    info = Info.from_event(event)
    return {
        "ms": took * 1000,
        "asr": [[p.name, [m.name for m in p.models], [m.languages for m in p.models]] for p in info.asr],
        "tts": [[p.name, [v.name for v in p.voices], p.supports_synthesize_streaming] for p in info.tts],
        "handle": [[p.name, [m.name for m in p.models]] for p in info.handle],
    }


async def transcribe(host, port, path):
    with wave.open(path, "rb") as wav:
        rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
        pcm = wav.readframes(wav.getnframes())
    async with AsyncTcpClient(host, port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
        step = 1024 * width * channels
        for i in range(0, len(pcm), step):
            chunk = AudioChunk(rate=rate, width=width, channels=channels, audio=pcm[i : i + step])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        stopped = time.monotonic()
        while True:
            event = await asyncio.wait_for(client.read_event(), TIMEOUT)
            if event is None:
                return {"error": "connection closed"}
            if Transcript.is_type(event.type):
                took = time.monotonic() - stopped
                return {"text": Transcript.from_event(event).text, "ms": took * 1000}
            if Error.is_type(event.type):
                return {"error": Error.from_event(event).text}


async def read_audio(client, out_path, streaming, start):
    """Audio until audio-stop (or synthesize-stopped when streaming), written as a WAV; the
    first audio's time is counted from `start`."""
    pcm, fmt, pieces, first = bytearray(), None, 0, None
    while True:
        event = await asyncio.wait_for(client.read_event(), TIMEOUT)
        if event is None:
            return {"error": "connection closed"}
        if Error.is_type(event.type):
            return {"error": Error.from_event(event).text}
        if AudioStart.is_type(event.type):
            pieces += 1
        elif AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            if first is None:
                first = time.monotonic() - start
            fmt = (chunk.rate, chunk.width, chunk.channels)
            pcm.extend(chunk.audio)
        elif AudioStop.is_type(event.type) and not streaming:
            break
        elif SynthesizeStopped.is_type(event.type):
            break
    with wave.open(out_path, "wb") as wav:
        wav.setframerate(fmt[0])
        wav.setsampwidth(fmt[1])
        wav.setnchannels(fmt[2])
        wav.writeframes(bytes(pcm))
    return {"rate": fmt[0], "width": fmt[1], "channels": fmt[2], "pieces": pieces,
            "seconds": len(pcm) / (fmt[0] * fmt[1] * fmt[2]), "first_audio_ms": first * 1000}


async def synthesize(host, port, text, out_path):
    async with AsyncTcpClient(host, port) as client:
        start = time.monotonic()
        await client.write_event(Synthesize(text=text).event())
        return await read_audio(client, out_path, False, start)


async def synthesize_streaming(host, port, text, out_path):
    async with AsyncTcpClient(host, port) as client:
        start = time.monotonic()
        await client.write_event(SynthesizeStart().event())
        # Words as a language model would write them.
        for word in text.split(" "):
            await client.write_event(SynthesizeChunk(text=word + " ").event())
            await asyncio.sleep(0.01)
        # The whole text again for servers that do not stream; hark must not speak it twice.
        await client.write_event(Synthesize(text=text).event())
        await client.write_event(SynthesizeStop().event())
        return await read_audio(client, out_path, True, start)


async def ask(client, text, conversation_id):
    context = None if conversation_id is None else {"conversation_id": conversation_id}
    await client.write_event(Transcript(text=text, context=context).event())
    event = await asyncio.wait_for(client.read_event(), TIMEOUT)
    if Handled.is_type(event.type):
        return Handled.from_event(event).text
    if NotHandled.is_type(event.type):
        return "NOT HANDLED: " + (NotHandled.from_event(event).text or "")
    return "UNEXPECTED: " + event.type


async def handle(host, port, turns, conversation_id, one_connection):
    """Home Assistant's way: a connection per turn, and the conversation id it made itself
    in each transcript's context. Without an id: an anonymous client."""
    replies = []
    if one_connection:
        async with AsyncTcpClient(host, port) as client:
            for text in turns:
                replies.append(await ask(client, text, conversation_id))
        return {"replies": replies}
    for text in turns:
        async with AsyncTcpClient(host, port) as client:
            replies.append(await ask(client, text, conversation_id))
    return {"replies": replies}


def main():
    host, port, command, *args = sys.argv[1:]
    port = int(port)
    if command == "describe":
        result = describe(host, port)
    elif command == "transcribe":
        result = transcribe(host, port, args[0])
    elif command == "synthesize":
        result = synthesize(host, port, args[0], args[1])
    elif command == "synthesize-streaming":
        result = synthesize_streaming(host, port, args[0], args[1])
    elif command == "handle":
        result = handle(host, port, args, uuid.uuid4().hex, False)
    elif command == "handle-anonymous":
        result = handle(host, port, args, None, False)
    elif command == "handle-one-connection":
        result = handle(host, port, args, None, True)
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(asyncio.run(result)))


if __name__ == "__main__":
    main()
