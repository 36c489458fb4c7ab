"""`pamiq bag info` and `pamiq bag export`: look at a recorded session without ROS tools."""

from __future__ import annotations

from collections import defaultdict
import os
import wave

import cv2
import numpy as np
from rosbags.rosbag2 import Reader
import yaml

from pamiq.media.audio import CHANNELS, SAMPLE_RATE
from pamiq.ros import topics
from pamiq.ros.bags import deserialize, read_messages, split_paths
from pamiq.ros.image_conversion import image_to_numpy
from pamiq.ros.messages import stamp_ns
from pamiq.ros.sense_messages import audio_chunk

# the recorder's custom_data, pamiq.<name>
MADE_BY = ('model', 'reward', 'recurrent', 'action_space')


def recorded_by(split: str) -> dict[str, str]:
    """The model, reward, recurrence and action space the recorder wrote into a split's
    metadata (none for a bag another recorder wrote)."""
    try:
        with open(os.path.join(split, 'metadata.yaml')) as stream:
            information = yaml.safe_load(stream)['rosbag2_bagfile_information']
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return {}
    custom = information.get('custom_data') or {}
    return {name: str(custom[f'pamiq.{name}']) for name in MADE_BY if f'pamiq.{name}' in custom}


def bag_info(path: str) -> str:
    """Topics with type, count, rate; duration and splits; as text."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    first, last, size, splits = None, None, 0, split_paths(path)
    for split in splits:
        with Reader(split) as reader:
            for connection in reader.connections:
                counts[(connection.topic, connection.msgtype)] += connection.msgcount
            if reader.message_count:
                first = reader.start_time if first is None else min(first, reader.start_time)
                last = reader.end_time if last is None else max(last, reader.end_time)
        size += sum(os.path.getsize(os.path.join(split, f)) for f in os.listdir(split))
    duration = (last - first) / 1e9 if first is not None else 0.0
    lines = [
        f'bag:       {path}',
        f'splits:    {len(splits)} ({size / 1e6:.1f} MB)',
        f'duration:  {duration:.1f} s',
        f'messages:  {sum(counts.values())}',
    ]
    made_by = recorded_by(splits[0]) if splits else {}
    if made_by:
        lines.append('made by:   ' + ', '.join(f'{k} {v}' for k, v in made_by.items()))
    lines += [
        '',
        f'{"topic":<40} {"type":<32} {"count":>7} {"rate (Hz)":>10}',
    ]
    for (topic, msgtype), count in sorted(counts.items()):
        rate = count / duration if duration > 0 else 0.0
        lines.append(f'{topic:<40} {msgtype:<32} {count:>7} {rate:>10.2f}')
    return '\n'.join(lines)


def export_video(
    path: str, output: str, topic: str = 'agent/observation', fps: float = 10.0, scale: int = 4
) -> int:
    """Write a bag's image stream to an MP4 or GIF; returns the number of frames."""
    extension = os.path.splitext(output)[1].lower()
    if extension not in ('.mp4', '.gif'):
        raise ValueError(f'{output}: export writes .mp4 or .gif')
    frames, first_stamp, chunks = [], None, []
    for message in read_messages([path]):
        if topics.matches(message.topic, topic):
            msg = deserialize(message)
            first_stamp = stamp_ns(msg) if first_stamp is None else first_stamp
            image = image_to_numpy(msg, 'rgb8')
            frames.append(
                cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            )
        elif topics.matches(message.topic, topics.AUDIO_PCM):
            try:
                chunks.append(audio_chunk(deserialize(message)))
            except ValueError:
                continue  # a malformed chunk is a gap of silence
    if not frames:
        raise ValueError(f'{path} has no messages on {topic}')
    if chunks:
        duration = len(frames) / fps
        write_wav(os.path.splitext(output)[0] + '.wav', chunks, first_stamp, duration)
    if extension == '.gif':
        from PIL import Image as PILImage

        pictures = [PILImage.fromarray(f) for f in frames]
        pictures[0].save(
            output, save_all=True, append_images=pictures[1:], duration=int(1000 / fps), loop=0
        )
    else:
        height, width = frames[0].shape[:2]
        writer = cv2.VideoWriter(output, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
        if not writer.isOpened():
            raise OSError(f'OpenCV cannot write {output}')
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
    return len(frames)


def write_wav(
    path: str, chunks: list[tuple[int, np.ndarray]], start_ns: int, seconds: float
) -> str:
    """The sound of a recording as a WAV beside its video, sample 0 at the first frame's stamp
    (OpenCV's MP4 writer has no audio track): each chunk at its stamp, silence where none."""
    track = np.zeros((round(seconds * SAMPLE_RATE), CHANNELS), np.int16)
    for stamp, pcm in chunks:
        offset = round((stamp - start_ns) * SAMPLE_RATE / 1e9)
        begin, end = max(offset, 0), min(offset + len(pcm), len(track))
        if begin < end:
            track[begin:end] = pcm[begin - offset : end - offset]
    with wave.open(path, 'wb') as sound:
        sound.setnchannels(CHANNELS)
        sound.setsampwidth(2)
        sound.setframerate(SAMPLE_RATE)
        sound.writeframes(track.tobytes())
    return path
