//! Sound devices through cpal: a microphone as an [`AudioSource`] and a speaker as an
//! [`AudioSink`].
//!
//! The device callbacks run on the audio server's real-time thread, so they only move
//! samples through a lock-free ring buffer (ringbuf): no allocation, lock, log or system
//! call. Everything else (channel mixing aside, which is arithmetic) happens on the loop's
//! side: resampling, waiting, error reporting. Samples the loop did not take in time
//! (overruns) and samples the speaker needed but did not have (underruns) are counted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

use super::aec::{EchoCanceller, EchoReference, AEC_RATE};
use super::resample::StreamResampler;
use super::{AudioError, AudioSink, AudioSource, SPEECH_RATE};

/// How long the ring buffers hold: far more than any scheduling hiccup.
const RING_SECONDS: f32 = 2.0;
/// A device that delivers nothing for this long has failed. Generous: PulseAudio's first
/// capture callback was seen to come 1–2 s after the stream started.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Audio queued ahead of the speaker before it starts, to ride out the loop's jitter.
const SPEAKER_PREFILL_MS: u32 = 40;
/// Device buffer (callback period) asked for.
const BUFFER_MS: u32 = 10;
/// The loop waits this long between looks at a ring buffer.
const POLL: Duration = Duration::from_millis(2);

/// Counts kept by the callbacks (atomics: readable from any thread while the stream runs).
#[derive(Debug, Default)]
pub struct StreamCounters {
    pub callbacks: AtomicU64,
    /// Microphone samples dropped because the ring buffer was full (the loop fell behind).
    pub overruns: AtomicU64,
    /// Speaker samples played as silence because the ring buffer was empty.
    pub underruns: AtomicU64,
    /// Errors the audio server reported for the stream.
    pub errors: AtomicU64,
}

impl StreamCounters {
    pub fn snapshot(&self) -> StreamStats {
        StreamStats {
            callbacks: self.callbacks.load(Ordering::Relaxed),
            overruns: self.overruns.load(Ordering::Relaxed),
            underruns: self.underruns.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct StreamStats {
    pub callbacks: u64,
    pub overruns: u64,
    pub underruns: u64,
    pub errors: u64,
}

/// One device as `hark devices` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceInfo {
    pub host: String,
    /// The device's id, unique and stable: what `--input-device` and `--output-device` take.
    pub name: String,
    /// What the audio system calls it, for people.
    pub description: String,
    /// Default input format, e.g. "48000 Hz, 2 ch, f32"; None if it cannot record.
    pub input: Option<String>,
    pub output: Option<String>,
    pub default_input: bool,
    pub default_output: bool,
}

/// The stream config for `supported`, with a small fixed buffer where the device allows one:
/// left to its default, PulseAudio delivers capture in large fragments, and every ms of
/// buffering is a ms of reply latency.
fn low_latency(supported: &cpal::SupportedStreamConfig) -> StreamConfig {
    let mut config = supported.config();
    let wanted = supported.sample_rate() * BUFFER_MS / 1000;
    if let cpal::SupportedBufferSize::Range { min, max } = *supported.buffer_size() {
        config.buffer_size = cpal::BufferSize::Fixed(wanted.clamp(min, max.max(min)));
    }
    config
}

/// The device's default format, moved to 48 kHz where the device offers it: the echo
/// canceller's rate, and the usual native rate, so no resampling happens in the server.
fn preferred_config(
    device: &cpal::Device,
    input: bool,
) -> Result<cpal::SupportedStreamConfig, cpal::Error> {
    let default = if input {
        device.default_input_config()?
    } else {
        device.default_output_config()?
    };
    if default.sample_rate() == AEC_RATE {
        return Ok(default);
    }
    let ranges: Vec<_> = if input {
        device.supported_input_configs()?.collect()
    } else {
        device.supported_output_configs()?.collect()
    };
    let at_48k = ranges
        .into_iter()
        .filter(|r| {
            r.sample_format() == default.sample_format() && r.channels() == default.channels()
        })
        .find_map(|r| r.try_with_sample_rate(AEC_RATE));
    Ok(at_48k.unwrap_or(default))
}

fn device_error(what: &str, e: impl std::fmt::Display) -> AudioError {
    AudioError::Device(format!("{what}: {e}"))
}

fn describe(config: &cpal::SupportedStreamConfig) -> String {
    format!(
        "{} Hz, {} ch, {}",
        config.sample_rate(),
        config.channels(),
        config.sample_format()
    )
}

/// A device's unique name, e.g. `pulseaudio:room`; its description where it has no id.
fn device_name(device: &cpal::Device) -> String {
    device
        .id()
        .map(|id| id.to_string())
        .unwrap_or_else(|_| device.to_string())
}

/// The audio systems to look in: the default one (PulseAudio where a server runs), or all
/// that are available, with the reason of each available one that could not be opened (a
/// sound server that did not answer in time).
fn hosts(all: bool) -> (Vec<cpal::Host>, Vec<String>) {
    if !all {
        return (vec![cpal::default_host()], Vec::new());
    }
    let mut opened = Vec::new();
    let mut unreachable = Vec::new();
    for id in cpal::available_hosts() {
        match cpal::host_from_id(id) {
            Ok(host) => opened.push(host),
            Err(e) => unreachable.push(format!("{}: {e}", id.name())),
        }
    }
    (opened, unreachable)
}

/// The devices of the default audio system, or of every one cpal can reach (`all`).
pub fn list_devices(all: bool) -> Result<Vec<DeviceInfo>, AudioError> {
    let mut list = Vec::new();
    for host in hosts(all).0 {
        let default_in = host.default_input_device().map(|d| device_name(&d));
        let default_out = host.default_output_device().map(|d| device_name(&d));
        let devices = host
            .devices()
            .map_err(|e| device_error("listing devices", e))?;
        for device in devices {
            let name = device_name(&device);
            list.push(DeviceInfo {
                host: host.id().name().to_string(),
                description: device.to_string(),
                input: device.default_input_config().ok().map(|c| describe(&c)),
                output: device.default_output_config().ok().map(|c| describe(&c)),
                default_input: default_in.as_deref() == Some(&name),
                default_output: default_out.as_deref() == Some(&name),
                name,
            });
        }
    }
    Ok(list)
}

/// Finds a device by name (exact, else the only one whose name contains it), or the
/// default one. Other audio systems are searched only when the default one lacks it.
fn find_device(name: Option<&str>, input: bool) -> Result<cpal::Device, AudioError> {
    let kind = if input { "input" } else { "output" };
    let Some(wanted) = name else {
        let host = cpal::default_host();
        let device = if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        };
        return device.ok_or_else(|| {
            AudioError::Device(format!(
                "no default {kind} device (no sound card or audio server here?): see `hark devices`, or use a WAV file with --{kind}"
            ))
        });
    };
    // A sound server busy at start-up may miss the connection timeout: ask it again.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (mut candidates, unreachable) = named_devices(wanted, input);
        if candidates.len() == 1 {
            return Ok(candidates.remove(0).1);
        }
        if !candidates.is_empty() {
            return Err(AudioError::Device(format!(
                "'{wanted}' matches {} {kind} devices ({}); give the full name",
                candidates.len(),
                candidates
                    .iter()
                    .map(|(l, _)| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if unreachable.is_empty() || attempts == DEVICE_SEARCH_ATTEMPTS {
            let why = if unreachable.is_empty() {
                String::new()
            } else {
                format!(" (unreachable: {})", unreachable.join("; "))
            };
            return Err(AudioError::Device(format!(
                "no {kind} device named '{wanted}'{why}: see `hark devices`"
            )));
        }
        tracing::warn!(audio_systems = %unreachable.join("; "), "asking the sound server again");
    }
}

/// How many times the audio systems are searched for a named device while one of them does
/// not answer.
const DEVICE_SEARCH_ATTEMPTS: u32 = 3;

/// The devices whose name is `wanted` (the one, where it is exact) or contains it, in the
/// default audio system, else in every one; and the audio systems that could not be opened.
fn named_devices(wanted: &str, input: bool) -> (Vec<(String, cpal::Device)>, Vec<String>) {
    let mut candidates: Vec<(String, cpal::Device)> = Vec::new();
    let mut unreachable = Vec::new();
    for all in [false, true] {
        let (hosts, failed) = hosts(all);
        unreachable = failed;
        for host in hosts {
            let Ok(devices) = host.devices() else {
                continue;
            };
            for device in devices {
                let usable = if input {
                    device.supports_input()
                } else {
                    device.supports_output()
                };
                if !usable {
                    continue;
                }
                let label = device_name(&device);
                if label == wanted {
                    return (vec![(label, device)], Vec::new());
                }
                if label.contains(wanted) && !candidates.iter().any(|(l, _)| *l == label) {
                    candidates.push((label, device));
                }
            }
        }
        if !candidates.is_empty() {
            break;
        }
    }
    (candidates, unreachable)
}

/// A microphone: mono 16 kHz out, whatever the device's rate and channels.
pub struct Microphone {
    stream: cpal::Stream,
    samples: HeapCons<f32>,
    resampler: StreamResampler,
    /// Device-rate samples taken from the ring, and 16 kHz samples not yet handed out.
    scratch: Vec<f32>,
    ready: Vec<f32>,
    echo: Option<EchoCanceller>,
    cleaned: Vec<f32>,
    counters: Arc<StreamCounters>,
    failed: Arc<AtomicBool>,
    name: String,
    device_rate: u32,
}

impl Microphone {
    /// Opens `name` (see `hark devices`), or the default input, and starts capturing.
    pub fn open(name: Option<&str>) -> Result<Self, AudioError> {
        let device = find_device(name, true)?;
        let label = device_name(&device);
        let supported = preferred_config(&device, true)
            .map_err(|e| device_error(&format!("{label}: no input format"), e))?;
        let device_rate = supported.sample_rate();
        let channels = supported.channels() as usize;
        let (producer, consumer) =
            HeapRb::<f32>::new((device_rate as f32 * RING_SECONDS) as usize).split();
        let counters = Arc::new(StreamCounters::default());
        let failed = Arc::new(AtomicBool::new(false));
        let config = low_latency(&supported);
        let stream = match supported.sample_format() {
            SampleFormat::F32 => {
                capture::<f32>(&device, config, channels, producer, &counters, &failed)
            }
            SampleFormat::I16 => {
                capture::<i16>(&device, config, channels, producer, &counters, &failed)
            }
            SampleFormat::I32 => {
                capture::<i32>(&device, config, channels, producer, &counters, &failed)
            }
            SampleFormat::U8 => {
                capture::<u8>(&device, config, channels, producer, &counters, &failed)
            }
            other => {
                return Err(AudioError::Device(format!(
                    "{label}: sample format {other} is not supported"
                )))
            }
        }
        .map_err(|e| device_error(&format!("{label}: could not open for capture"), e))?;
        stream
            .play()
            .map_err(|e| device_error(&format!("{label}: could not start"), e))?;
        Ok(Self {
            stream,
            samples: consumer,
            resampler: StreamResampler::new(device_rate, SPEECH_RATE, 10)?,
            scratch: vec![0.0; device_rate as usize / 50],
            ready: Vec::with_capacity(SPEECH_RATE as usize),
            echo: None,
            cleaned: Vec::with_capacity(device_rate as usize / 10),
            counters,
            failed,
            name: label,
            device_rate,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn device_rate(&self) -> u32 {
        self.device_rate
    }

    /// Removes the echo of what `canceller`'s reference plays from everything captured.
    pub fn cancel_echo(&mut self, canceller: EchoCanceller) -> Result<(), AudioError> {
        if self.device_rate != AEC_RATE {
            return Err(AudioError::Device(format!(
                "{}: echo cancellation needs a {AEC_RATE} Hz microphone; this one runs at {} Hz",
                self.name, self.device_rate
            )));
        }
        self.echo = Some(canceller);
        Ok(())
    }

    pub fn stats(&self) -> StreamStats {
        self.counters.snapshot()
    }
}

fn capture<T>(
    device: &cpal::Device,
    config: StreamConfig,
    channels: usize,
    mut producer: HeapProd<f32>,
    counters: &Arc<StreamCounters>,
    failed: &Arc<AtomicBool>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let on_data = counters.clone();
    let on_error = counters.clone();
    let failed = failed.clone();
    let channels = channels.max(1);
    device.build_input_stream::<T, _, _>(
        config,
        // Real-time thread: arithmetic and atomics only.
        move |data: &[T], _| {
            on_data.callbacks.fetch_add(1, Ordering::Relaxed);
            let mut dropped = 0;
            for frame in data.chunks_exact(channels) {
                let sum: f32 = frame
                    .iter()
                    .map(|&s| <f32 as FromSample<T>>::from_sample_(s))
                    .sum();
                if producer.try_push(sum / channels as f32).is_err() {
                    dropped += 1;
                }
            }
            if dropped > 0 {
                on_data.overruns.fetch_add(dropped, Ordering::Relaxed);
            }
        },
        move |_| {
            on_error.errors.fetch_add(1, Ordering::Relaxed);
            failed.store(true, Ordering::Relaxed);
        },
        Some(Duration::from_secs(5)),
    )
}

impl AudioSource for Microphone {
    fn sample_rate(&self) -> u32 {
        SPEECH_RATE
    }

    fn read(&mut self, buf: &mut [f32]) -> Result<usize, AudioError> {
        let mut waiting_since = Instant::now();
        while self.ready.len() < buf.len() {
            let n = self.samples.pop_slice(&mut self.scratch);
            if n > 0 {
                waiting_since = Instant::now();
                let taken = &self.scratch[..n];
                match self.echo.as_mut() {
                    Some(echo) => {
                        self.cleaned.clear();
                        echo.process(taken, &mut self.cleaned)?;
                        self.resampler.push(&self.cleaned, &mut self.ready)?;
                    }
                    None => self.resampler.push(taken, &mut self.ready)?,
                }
                continue;
            }
            if self.failed.load(Ordering::Relaxed) && self.samples.is_empty() {
                return Err(AudioError::Device(format!(
                    "{}: the capture stream failed",
                    self.name
                )));
            }
            if waiting_since.elapsed() > STALL_TIMEOUT {
                return Err(AudioError::Device(format!(
                    "{}: no audio for {} s (device gone or stalled)",
                    self.name,
                    STALL_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(POLL);
        }
        buf.copy_from_slice(&self.ready[..buf.len()]);
        self.ready.drain(..buf.len());
        Ok(buf.len())
    }

    fn stream_stats(&self) -> Option<StreamStats> {
        Some(self.stats())
    }
}

impl Drop for Microphone {
    fn drop(&mut self) {
        let _ = self.stream.pause();
    }
}

/// A speaker: takes mono samples at its device rate and plays them on every channel.
pub struct Speaker {
    stream: cpal::Stream,
    samples: HeapProd<f32>,
    counters: Arc<StreamCounters>,
    /// Set by the loop to make the callback silence everything queued (pause, barge-in).
    flush: Arc<AtomicBool>,
    /// Set while the last audio plays out: an empty queue then is the end, not an underrun.
    draining: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
    started: bool,
    echo_reference: Option<EchoReference>,
    /// Underrun samples already given to the echo reference as the silence they played.
    referenced_underruns: u64,
    name: String,
    rate: u32,
}

impl Speaker {
    pub fn open(name: Option<&str>) -> Result<Self, AudioError> {
        let device = find_device(name, false)?;
        let label = device_name(&device);
        let supported = preferred_config(&device, false)
            .map_err(|e| device_error(&format!("{label}: no output format"), e))?;
        let rate = supported.sample_rate();
        let channels = supported.channels() as usize;
        let (producer, consumer) =
            HeapRb::<f32>::new((rate as f32 * RING_SECONDS) as usize).split();
        let counters = Arc::new(StreamCounters::default());
        let flush = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicBool::new(false));
        let draining = Arc::new(AtomicBool::new(false));
        let config = low_latency(&supported);
        let shared = (&counters, &flush, &failed, &draining);
        let stream = match supported.sample_format() {
            SampleFormat::F32 => playback::<f32>(&device, config, channels, consumer, shared),
            SampleFormat::I16 => playback::<i16>(&device, config, channels, consumer, shared),
            SampleFormat::I32 => playback::<i32>(&device, config, channels, consumer, shared),
            SampleFormat::U8 => playback::<u8>(&device, config, channels, consumer, shared),
            other => {
                return Err(AudioError::Device(format!(
                    "{label}: sample format {other} is not supported"
                )))
            }
        }
        .map_err(|e| device_error(&format!("{label}: could not open for playback"), e))?;
        Ok(Self {
            stream,
            samples: producer,
            counters,
            flush,
            draining,
            failed,
            started: false,
            echo_reference: None,
            referenced_underruns: 0,
            name: label,
            rate,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stats(&self) -> StreamStats {
        self.counters.snapshot()
    }

    /// Hands everything played to an echo canceller as its reference.
    pub fn feed_echo_reference(&mut self, reference: EchoReference) -> Result<(), AudioError> {
        if self.rate != AEC_RATE {
            return Err(AudioError::Device(format!(
                "{}: echo cancellation needs a {AEC_RATE} Hz speaker; this one runs at {} Hz",
                self.name, self.rate
            )));
        }
        self.echo_reference = Some(reference);
        Ok(())
    }

    /// Samples queued and not yet handed to the device.
    pub fn queued(&self) -> usize {
        self.samples.occupied_len()
    }
}

type Shared<'a> = (
    &'a Arc<StreamCounters>,
    &'a Arc<AtomicBool>,
    &'a Arc<AtomicBool>,
    &'a Arc<AtomicBool>,
);

fn playback<T>(
    device: &cpal::Device,
    config: StreamConfig,
    channels: usize,
    mut consumer: HeapCons<f32>,
    (counters, flush, failed, draining): Shared,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let on_data = counters.clone();
    let on_error = counters.clone();
    let flush = flush.clone();
    let failed = failed.clone();
    let draining = draining.clone();
    let channels = channels.max(1);
    device.build_output_stream::<T, _, _>(
        config,
        // Real-time thread: arithmetic and atomics only.
        move |data: &mut [T], _| {
            on_data.callbacks.fetch_add(1, Ordering::Relaxed);
            if flush.swap(false, Ordering::Relaxed) {
                // Silenced in place, not dropped: the echo reference already holds these
                // samples, and dropping them would put it ahead of what the room hears.
                let (head, tail) = consumer.as_mut_slices();
                head.fill(0.0);
                tail.fill(0.0);
            }
            let mut missing = 0;
            for frame in data.chunks_exact_mut(channels) {
                let value = match consumer.try_pop() {
                    Some(v) => v,
                    None => {
                        missing += 1;
                        0.0
                    }
                };
                frame.fill(T::from_sample_(value));
            }
            if missing > 0 && !draining.load(Ordering::Relaxed) {
                on_data.underruns.fetch_add(missing, Ordering::Relaxed);
            }
        },
        move |_| {
            on_error.errors.fetch_add(1, Ordering::Relaxed);
            failed.store(true, Ordering::Relaxed);
        },
        Some(Duration::from_secs(5)),
    )
}

impl AudioSink for Speaker {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn write(&mut self, mut samples: &[f32]) -> Result<(), AudioError> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(AudioError::Device(format!(
                "{}: the playback stream failed",
                self.name
            )));
        }
        if !self.started {
            // A little silence first, so the device never waits on the loop's next frame.
            let prefill = vec![0.0; (self.rate * SPEAKER_PREFILL_MS / 1000) as usize];
            self.samples.push_slice(&prefill);
            self.stream
                .play()
                .map_err(|e| device_error(&format!("{}: could not start", self.name), e))?;
            self.started = true;
            if let Some(reference) = self.echo_reference.as_mut() {
                reference.push(&prefill)?;
            }
        }
        if let Some(reference) = self.echo_reference.as_mut() {
            // An underrun empties the queue, so the silence it played came after everything
            // written before and before these samples: the reference gets it in that place,
            // and stays aligned with the echo the microphone hears.
            let underruns = self.counters.underruns.load(Ordering::Relaxed);
            let played_silence = underruns.saturating_sub(self.referenced_underruns);
            if played_silence > 0 {
                reference.push(&vec![0.0; played_silence as usize])?;
                self.referenced_underruns = underruns;
            }
            reference.push(samples)?;
        }
        let mut waiting_since = Instant::now();
        while !samples.is_empty() {
            let n = self.samples.push_slice(samples);
            samples = &samples[n..];
            if n > 0 {
                waiting_since = Instant::now();
            } else if waiting_since.elapsed() > STALL_TIMEOUT {
                return Err(AudioError::Device(format!(
                    "{}: the device stopped taking audio",
                    self.name
                )));
            } else {
                std::thread::sleep(POLL);
            }
        }
        Ok(())
    }

    fn discard_queued(&mut self) {
        self.flush.store(true, Ordering::Relaxed);
    }

    fn stream_stats(&self) -> Option<StreamStats> {
        Some(self.stats())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        // Let what is queued play out before the stream stops.
        self.draining.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs_f32(RING_SECONDS + 0.5);
        while self.started && !self.samples.is_empty() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        let _ = self.stream.pause();
        Ok(())
    }
}
