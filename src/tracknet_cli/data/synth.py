"""Deterministic synthetic tennis clips in the TrackNet layout, for the quickstart and the tests.

A court seen from behind a baseline (perspective trapezoid, white lines, net, crowd), two players,
a bird and a scoreboard as distractors and occluders, and a ball simulated in court coordinates
(gravity, bounces with restitution, hits that aim at the other half). Visibility follows TrackNet:
0 no ball in the picture, 1 clearly visible, 2 hard to see (fast and smeared, or half hidden),
3 hidden behind a player or the scoreboard (coordinates still given). numpy + PIL only.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tracknet_cli.atomic import publish_mode, remove_stale_temps, require_writable, temp_prefix
from tracknet_cli.data.labels import TENNIS_HEADER
from tracknet_cli.errors import InputError, UsageError

MARKER = ".tracknet-synth.json"

FLYING, HIT, BOUNCE = 0, 1, 2
GRAVITY = 1.0e-3  # court widths per frame^2: 9.8 m/s^2 at 30 fps on an 11 m wide court
RESTITUTION = 0.72
FAST_SPEED = 10.5  # px/frame at 512x288 above which the smeared ball counts as hard to see (2)


@dataclass(frozen=True)
class SynthReport:
    """What was written: totals over all clips, visibility 0-3 and status 0-2 frame counts."""

    out: Path
    games: int
    clips: int
    frames: int
    size: tuple[int, int]
    seed: int
    visibility: dict[int, int] = field(default_factory=dict)
    status: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


# ------------------------------------------------------------------ scene
@dataclass(frozen=True)
class _Style:
    court: tuple[int, int, int]
    surround: tuple[int, int, int]
    stands: tuple[int, int, int]
    ball: tuple[int, int, int]
    shirts: tuple[tuple[int, int, int], tuple[int, int, int]]


_PALETTES = [  # court, surround, stands
    ((45, 95, 165), (55, 125, 85), (35, 40, 55)),  # blue hard court
    ((55, 125, 75), (120, 65, 55), (45, 45, 40)),  # green hard court
    ((70, 75, 130), (40, 45, 70), (25, 25, 35)),  # indoor purple
    ((60, 140, 65), (50, 110, 55), (40, 50, 40)),  # grass
]


def _game_style(rng: np.random.Generator, game: int) -> _Style:
    court, surround, stands = _PALETTES[(game - 1) % len(_PALETTES)]

    def jitter(c: tuple[int, int, int], amount: int) -> tuple[int, int, int]:
        return tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in c)  # type: ignore[return-value]

    shirts = [(200, 40, 40), (30, 30, 30), (240, 240, 240), (40, 60, 200), (230, 120, 30), (120, 40, 150)]
    pick = rng.permutation(len(shirts))[:2]
    return _Style(
        court=jitter(court, 12),
        surround=jitter(surround, 12),
        stands=jitter(stands, 8),
        ball=jitter((222, 236, 72), 12),
        shirts=(shirts[pick[0]], shirts[pick[1]]),
    )


@dataclass(frozen=True)
class _Court:
    """Court coordinates: u across (0 left sideline, 1 right), v from far (0) to near (1) baseline."""

    width: int
    height: int
    cx: float
    y_top: float
    y_bot: float
    half_top: float
    half_bot: float

    def half_width(self, v: np.ndarray | float) -> np.ndarray | float:
        return self.half_top + (self.half_bot - self.half_top) * v

    def ground(self, u: np.ndarray | float, v: np.ndarray | float) -> tuple:
        x = self.cx + (2 * np.asarray(u) - 1) * self.half_width(v)
        return x, self.y_top + (self.y_bot - self.y_top) * np.asarray(v)

    def lift(self, h: np.ndarray | float, v: np.ndarray | float) -> np.ndarray | float:
        """Pixels a height of h court widths rises on screen at depth v (a high camera: x 0.55)."""
        return np.asarray(h) * 2 * self.half_width(v) * 0.55

    def image(self, u, v, h) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.ground(u, v)
        return np.asarray(x, np.float64), np.asarray(y - self.lift(h, v), np.float64)


def _clip_court(rng: np.random.Generator, game_rng: np.random.Generator, w: int, h: int) -> _Court:
    # Game-level camera, with a small per-clip wobble.
    base = game_rng.uniform([0.24, 0.86, 0.15, 0.36], [0.31, 0.92, 0.19, 0.42])
    wobble = rng.uniform(-0.01, 0.01, 4)
    y_top, y_bot, half_top, half_bot = base + wobble
    return _Court(w, h, w * (0.5 + rng.uniform(-0.02, 0.02)), y_top * h, y_bot * h, half_top * w, half_bot * w)


def _background(rng: np.random.Generator, court: _Court, style: _Style, scale: float) -> Image.Image:
    w, h = court.width, court.height
    img = Image.new("RGB", (w, h), style.surround)
    draw = ImageDraw.Draw(img)
    stands_bottom = court.y_top - 0.09 * h
    draw.rectangle([0, 0, w, stands_bottom], fill=style.stands)
    # Crowd: small static blobs of many colours (some white), a busy texture the model must ignore.
    n = int(250 * (w * max(stands_bottom, 1)) / (512 * 60))
    xs, ys = rng.uniform(0, w, n), rng.uniform(0, max(stands_bottom - 3 * scale, 1), n)
    colours = rng.integers(40, 230, (n, 3))
    for x, y, c in zip(xs, ys, colours):
        r = scale * rng.uniform(1.5, 3.0)
        draw.ellipse([x - r, y - r, x + r, y + 1.6 * r], fill=tuple(int(v) for v in c))
    draw.rectangle([0, stands_bottom, w, stands_bottom + 2 * scale], fill=(20, 20, 20))  # wall

    def pt(u: float, v: float) -> tuple[float, float]:
        x, y = court.ground(u, v)
        return float(x), float(y)

    out = 0.12  # run-off around the lines, same colour as the court
    draw.polygon([pt(-out, -0.05), pt(1 + out, -0.05), pt(1 + out, 1.05), pt(-out, 1.05)], fill=style.court)
    line = (238, 238, 238)

    def seg(a: tuple[float, float], b: tuple[float, float], v: float) -> None:
        draw.line([pt(*a), pt(*b)], fill=line, width=max(1, round(scale * (1.0 + 1.2 * v))))

    for v in (0.0, 1.0):
        seg((0, v), (1, v), v)
    for u in (0.0, 0.125, 0.875, 1.0):
        seg((u, 0), (u, 0.5), 0.25)
        seg((u, 0.5), (u, 1), 0.75)
    for v in (0.23, 0.77):
        seg((0.125, v), (0.875, v), v)
    seg((0.5, 0.23), (0.5, 0.5), 0.4)
    seg((0.5, 0.5), (0.5, 0.77), 0.6)
    # Net: a dark translucent band rising from the centre line, white tape on top, posts.
    pixels = np.asarray(img).astype(np.float32)
    net = Image.new("L", (w, h), 0)
    nd = ImageDraw.Draw(net)
    x0, y0 = pt(-0.05, 0.5)
    x1, _ = pt(1.05, 0.5)
    top = y0 - float(court.lift(0.083, 0.5))
    nd.rectangle([x0, top, x1, y0], fill=150)
    alpha = np.asarray(net, np.float32)[..., None] / 255.0
    pixels = pixels * (1 - alpha) + 25 * alpha
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.line([(x0, top), (x1, top)], fill=(245, 245, 245), width=max(1, round(1.5 * scale)))
    for x in (x0, x1):
        draw.line([(x, top - scale), (x, y0)], fill=(60, 60, 60), width=max(1, round(2 * scale)))
    # Static texture so the court is not flat.
    grain = rng.normal(0.0, 3.0, (h, w, 1)).astype(np.float32)
    return Image.fromarray(np.clip(np.asarray(img, np.float32) + grain, 0, 255).astype(np.uint8))


# ------------------------------------------------------------------ ball flight
@dataclass
class _Flight:
    """Per-frame ball state in court coordinates (NaN: no ball) and events."""

    u: np.ndarray
    v: np.ndarray
    h: np.ndarray
    status: np.ndarray
    hits: list[tuple[int, int, bool]]  # (frame, player 0 far / 1 near, hide the ball behind the body)
    point_ends: list[int]


def _aim(rng: np.random.Generator, hitter: int, kind: str) -> tuple[float, float, int]:
    """Landing point (u, v) on the other half and the flight time in frames."""
    if kind == "serve":
        u, v, n = rng.uniform(0.2, 0.8), rng.uniform(0.28, 0.42), int(rng.integers(12, 16))
    elif kind == "out":
        u = rng.choice([rng.uniform(-1.6, -1.1), rng.uniform(2.1, 2.6)])
        v, n = rng.uniform(0.05, 0.45), int(rng.integers(20, 28))
    else:
        u, v = rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.42)
        n = {"fast": int(rng.integers(10, 14)), "lob": int(rng.integers(48, 62))}.get(kind, int(rng.integers(22, 34)))
    return float(u), float(v if hitter == 1 else 1 - v), n


def _launch(
    rng: np.random.Generator,
    hits: list[tuple[int, int, bool]],
    status: np.ndarray,
    t: int,
    pos: np.ndarray,
    who: int,
    kind: str,
) -> np.ndarray:
    """Player `who` hits the ball at `pos` in frame t: the new ball state (u, v, h, du, dv, dh), the hit recorded."""
    tu, tv, n = _aim(rng, who, kind)
    dh = (GRAVITY * n * n / 2 - pos[2]) / n
    hits.append((t, who, not hits or bool(rng.random() < 0.15)))  # the first hit always hides the ball
    status[t] = HIT
    return np.array([pos[0], pos[1], pos[2], (tu - pos[0]) / n, (tv - pos[1]) / n, dh])


def _reach(rng: np.random.Generator, receiver: int) -> float:
    """The depth v at which the receiver plays the ball, a little inside or behind their baseline."""
    return rng.uniform(-0.08, 0.04) if receiver == 0 else rng.uniform(0.96, 1.08)


@dataclass
class _Point:
    """A point in play: the ball (u, v, h, du, dv, dh in court units) and where the rally stands."""

    ball: np.ndarray
    hitter: int
    receiver: int
    reach: float
    bounced: bool = False
    since_bounce: int = 0
    over: bool = False  # lost (second bounce, a miss, or hit out): the ball runs on until it leaves
    since_over: int = 0


def _serve(rng: np.random.Generator, t: int, hits: list[tuple[int, int, bool]], status: np.ndarray) -> _Point:
    """A new point: a random player serves from behind their baseline in frame t."""
    hitter = int(rng.integers(0, 2))
    receiver = 1 - hitter
    start = np.array([rng.uniform(0.2, 0.8), -0.03 if hitter == 0 else 1.03, 0.26])
    ball = _launch(rng, hits, status, t, start, hitter, "serve")
    return _Point(ball, hitter, receiver, _reach(rng, receiver))


def _fly(point: _Point, status: np.ndarray, t: int) -> None:
    """One frame of flight under gravity; a bounce loses speed (and a second bounce loses the point)."""
    ball = point.ball
    ball[:3] += ball[3:]
    ball[5] -= GRAVITY
    if ball[2] < 0 and ball[5] < 0:
        ball[2], ball[5] = -ball[2] * RESTITUTION, -ball[5] * RESTITUTION
        ball[3:5] *= 0.85
        status[t] = BOUNCE
        if point.bounced:
            point.over = True  # second bounce: the receiver missed
        point.bounced, point.since_bounce = True, 0
    elif point.bounced:
        point.since_bounce += 1


def _play_on(
    rng: np.random.Generator, point: _Point, t: int, hits: list[tuple[int, int, bool]], status: np.ndarray
) -> None:
    """Once the ball has bounced and reached the receiver (or hung long enough), they return it or miss."""
    ball = point.ball
    beyond = ball[1] <= point.reach if point.receiver == 0 else ball[1] >= point.reach
    if point.over or not point.bounced or status[t] == BOUNCE or not (beyond or point.since_bounce > 22):
        return
    if rng.random() < 0.1:
        point.over = True  # a miss: the ball runs on past the receiver
        return
    kind = rng.choice(["normal", "fast", "lob", "out"], p=[0.65, 0.15, 0.1, 0.1])
    point.hitter, point.receiver = point.receiver, point.hitter
    point.ball = _launch(rng, hits, status, t, ball[:3].copy(), point.hitter, str(kind))
    point.bounced, point.since_bounce = False, 0
    point.reach = _reach(rng, point.receiver)
    point.over = kind == "out"


def _run_out(point: _Point, court: _Court) -> bool:
    """Count a lost point's frames: True once its ball has left the picture, or after 30 frames."""
    point.since_over += 1
    x, y = court.image(point.ball[0], point.ball[1], point.ball[2])
    gone = not (0 <= x < court.width and 0 <= y < court.height)
    return gone or point.since_over > 30


def _simulate(rng: np.random.Generator, frames: int, court: _Court) -> _Flight:
    """Points one after another, a few ball-less frames between them, for `frames` frames."""
    u, v, h = (np.full(frames, np.nan) for _ in range(3))
    status = np.zeros(frames, np.int8)
    hits: list[tuple[int, int, bool]] = []
    point_ends: list[int] = []
    gap = int(rng.integers(3, 9))  # every clip opens without a ball: visibility 0 guaranteed
    point: _Point | None = None
    for t in range(frames):
        if point is None:
            if gap > 0:
                gap -= 1
                continue
            point = _serve(rng, t, hits, status)
        else:
            _fly(point, status, t)
            _play_on(rng, point, t, hits, status)
            if point.over and _run_out(point, court):
                point_ends.append(t)
                point = None
                gap = int(rng.integers(8, 20))
                continue
        u[t], v[t], h[t] = point.ball[0], point.ball[1], point.ball[2]
    return _Flight(u, v, h, status, hits, point_ends)


# ------------------------------------------------------------------ people and things
@dataclass(frozen=True)
class _Body:
    """A player: feet position and body height in pixels; the shapes are derived from these."""

    x: float
    y: float
    height: float

    def shapes(
        self,
    ) -> tuple[tuple[float, float, float, float], tuple[float, float, float, float], tuple[float, float, float, float]]:
        """Boxes (x0, y0, x1, y1) of torso ellipse, head ellipse and legs rectangle."""
        b, x, y = self.height, self.x, self.y
        torso = (x - 0.17 * b, y - 0.80 * b, x + 0.17 * b, y - 0.38 * b)
        head = (x - 0.09 * b, y - 1.0 * b, x + 0.09 * b, y - 0.80 * b)
        legs = (x - 0.12 * b, y - 0.45 * b, x + 0.12 * b, y)
        return torso, head, legs

    def covers(self, px: float, py: float, grow: float = 0.0) -> bool:
        torso, head, legs = self.shapes()
        for x0, y0, x1, y1 in (torso, head):
            cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 + grow, (y1 - y0) / 2 + grow
            if ((px - cx) / rx) ** 2 + ((py - cy) / ry) ** 2 <= 1.0:
                return True
        x0, y0, x1, y1 = legs
        return x0 - grow <= px <= x1 + grow and y0 - grow <= py <= y1 + grow


def _players(
    flight: _Flight, court: _Court, bx: np.ndarray, by: np.ndarray, rng: np.random.Generator
) -> list[list[_Body]]:
    """Each player's body per frame: keyframes at their hits (beside the ball, or in front of it), interpolated."""
    frames = len(flight.u)
    out: list[list[_Body]] = []
    for player in (0, 1):
        home_v = -0.06 if player == 0 else 1.06
        hx, hy = court.ground(0.5, home_v)
        keys: list[tuple[int, float, float]] = [(0, float(hx) + rng.uniform(-20, 20) * court.width / 512, float(hy))]
        for t, who, hide in flight.hits:
            if who != player:
                continue
            gx, gy = court.ground(flight.u[t], flight.v[t])
            height = 0.19 * 2 * float(court.half_width(flight.v[t]))
            side = 1 if rng.random() < 0.5 else -1
            beside = (float(gx) + side * 0.42 * height, float(gy))
            keys.append((max(0, t - 10), *beside))  # in place early: the ball is not hidden on its way in
            if hide:
                # Step in front of the ball just for the stroke: hidden for a few frames around it.
                keys.append((max(0, t - 3), *beside))
                keys.append((t, float(bx[t]) + rng.uniform(-0.05, 0.05) * height, float(by[t]) + 0.58 * height))
                keys.append((min(frames - 1, t + 3), *beside))
            else:
                keys.append((t, *beside))
        for t in flight.point_ends:
            keys.append((min(frames - 1, t + 15), float(hx), float(hy)))
        keys.sort()
        ts = np.array([k[0] for k in keys], np.float64)
        xs = np.interp(np.arange(frames), ts, [k[1] for k in keys])
        ys = np.interp(np.arange(frames), ts, [k[2] for k in keys])
        depth = (ys - court.y_top) / (court.y_bot - court.y_top)
        heights = 0.19 * 2 * court.half_width(depth)
        out.append([_Body(float(x), float(y), float(b)) for x, y, b in zip(xs, ys, heights)])
    return out


def _bird_track(rng: np.random.Generator, frames: int, w: int, h: int, scale: float) -> np.ndarray:
    """(frames, 2) positions of a white bird crossing the picture again and again (NaN when away)."""
    xy = np.full((frames, 2), np.nan)
    t = int(rng.integers(0, 10))
    while t < frames:
        left = rng.random() < 0.5
        speed = rng.uniform(2.5, 5.0) * scale
        y0, drift = rng.uniform(0.06, 0.6) * h, rng.uniform(-0.4, 0.4) * scale
        x = -8 * scale if left else w + 8 * scale
        while t < frames and -10 * scale <= x <= w + 10 * scale:
            xy[t] = (x, y0 + drift * (t % 1000) + 2 * scale * math.sin(t / 3.0))
            x += speed if left else -speed
            t += 1
        t += int(rng.integers(0, 15))
    return xy


# ------------------------------------------------------------------ drawing
def _stamp_ball(
    pixels: np.ndarray, cx: float, cy: float, vx: float, vy: float, radius: float, colour: tuple[int, int, int]
) -> None:
    """Blend a motion-blurred ball (a capsule along the velocity) into pixels in place."""
    h, w = pixels.shape[:2]
    exposure = 0.8
    hx, hy = vx * exposure / 2, vy * exposure / 2
    length = 2 * math.hypot(hx, hy)
    pad = radius + abs(hx) + abs(hy) + 2
    x0, x1 = max(0, int(cx - pad)), min(w, int(cx + pad) + 1)
    y0, y1 = max(0, int(cy - pad)), min(h, int(cy + pad) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    gx, gy = np.meshgrid(np.arange(x0, x1) + 0.5 - cx, np.arange(y0, y1) + 0.5 - cy)
    seg2 = hx * hx + hy * hy
    s = np.clip((gx * hx + gy * hy) / seg2, -1.0, 1.0) if seg2 > 0 else 0.0
    d = np.hypot(gx - s * hx, gy - s * hy)
    coverage = np.clip(radius + 0.5 - d, 0.0, 1.0)
    strength = min(1.0, (2 * radius / (2 * radius + length)) ** 0.6)  # a streak spreads the light
    shade = 1.0 - 0.25 * np.clip(d / max(radius, 1e-6), 0, 1) ** 2
    alpha = (coverage * strength)[..., None]
    patch = pixels[y0:y1, x0:x1].astype(np.float32)
    ball = np.asarray(colour, np.float32)[None, None, :] * shade[..., None]
    pixels[y0:y1, x0:x1] = np.clip(patch * (1 - alpha) + ball * alpha + 0.5, 0, 255).astype(np.uint8)


def _draw_body(draw: ImageDraw.ImageDraw, body: _Body, shirt: tuple[int, int, int]) -> None:
    torso, head, legs = body.shapes()
    draw.rectangle(legs, fill=(205, 160, 125))
    draw.ellipse(torso, fill=shirt)
    draw.ellipse(head, fill=(200, 150, 110))


def _velocity(p: np.ndarray) -> np.ndarray:
    """Pixels per frame by central differences, one-sided at the ends of a flight, 0 where unknown."""
    back = np.r_[np.nan, np.diff(p)]
    ahead = np.r_[np.diff(p), np.nan]
    both = np.stack([back, ahead])
    n = np.isfinite(both).sum(axis=0)
    return np.where(n > 0, np.nansum(both, axis=0) / np.maximum(n, 1), 0.0)


@dataclass(frozen=True)
class _Scene:
    """Everything a clip's frames are drawn from, laid out before the first one; ball arrays per frame
    in pixels (NaN: no ball), `noise` a sensor-noise field each frame takes a window of at `offsets`."""

    size: tuple[int, int]
    scale: float
    style: _Style
    background: Image.Image
    flight: _Flight
    bx: np.ndarray
    by: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    radius: np.ndarray
    bodies: list[list[_Body]]
    bird: np.ndarray
    board: tuple[float, float, float, float]
    noise: np.ndarray
    offsets: np.ndarray


def _stage(
    rng: np.random.Generator, game_rng: np.random.Generator, style: _Style, frames: int, size: tuple[int, int]
) -> _Scene:
    """Draw the clip's camera, court, ball flight, players, bird and noise from `rng`, in this fixed order."""
    w, h = size
    scale = math.sqrt((w / 512) * (h / 288))
    court = _clip_court(rng, game_rng, w, h)
    background = _background(rng, court, style, scale)
    flight = _simulate(rng, frames + 60, court)  # run on past the end so players move for the next stroke
    bx, by = court.image(flight.u, flight.v, flight.h)
    vx, vy = _velocity(bx), _velocity(by)
    radius = (3.0 + 2.0 * np.clip(np.nan_to_num(flight.v), 0, 1)) * scale
    bodies = _players(flight, court, bx, by, rng)
    bird = _bird_track(rng, frames, w, h, scale)
    board = (0.03 * w, 0.04 * h, 0.24 * w, 0.13 * h)
    noise = rng.integers(-4, 5, (h + 8, w + 8, 3), dtype=np.int16)
    offsets = rng.integers(0, 9, (frames, 2))
    return _Scene(size, scale, style, background, flight, bx, by, vx, vy, radius, bodies, bird, board, noise, offsets)


def _visibility(scene: _Scene, t: int) -> int:
    """TrackNet's class of the ball in frame t: 0 out of the picture, 3 hidden by a player or the scoreboard,
    2 half hidden or fast enough to smear, 1 clearly visible."""
    w, h = scene.size
    x, y, board = scene.bx[t], scene.by[t], scene.board
    if not (np.isfinite(x) and 0 <= x < w and 0 <= y < h):
        return 0
    r = float(scene.radius[t])
    in_board = board[0] <= x <= board[2] and board[1] <= y <= board[3]
    near_board = board[0] - r <= x <= board[2] + r and board[1] - r <= y <= board[3] + r
    hidden = in_board or any(b[t].covers(x, y) for b in scene.bodies)
    partly = near_board or any(b[t].covers(x, y, grow=r) for b in scene.bodies)
    fast = math.hypot(scene.vx[t], scene.vy[t]) > FAST_SPEED * scene.scale
    return 3 if hidden else 2 if (partly or fast) else 1


def _draw_bird(draw: ImageDraw.ImageDraw, scene: _Scene, t: int) -> None:
    """The bird in frame t, if it is in the picture, wings up and down every 3 frames."""
    if not np.isfinite(scene.bird[t, 0]):
        return
    flap = (t // 3) % 2
    rx, ry = (6.0, 2.2) if flap else (4.2, 3.6)
    px, py = scene.bird[t]
    s = scene.scale
    draw.ellipse([px - rx * s, py - ry * s, px + rx * s, py + ry * s], fill=(244, 244, 238))


def _draw_board(draw: ImageDraw.ImageDraw, board: tuple[float, float, float, float], scale: float) -> None:
    """The scoreboard: a dark box with two light score bars."""
    draw.rectangle(board, fill=(18, 28, 60))
    for i in range(2):
        draw.rectangle(
            [
                board[0] + 4 * scale,
                board[1] + (5 + 11 * i) * scale,
                board[0] + (40 + 25 * i) * scale,
                board[1] + (11 + 11 * i) * scale,
            ],
            fill=(230, 230, 230),
        )


def _draw_frame(scene: _Scene, t: int) -> Image.Image:
    """Frame t, back to front: background, bird, ball, players, scoreboard, then sensor noise."""
    w, h = scene.size
    img = scene.background.copy()
    _draw_bird(ImageDraw.Draw(img), scene, t)
    pixels = np.array(img)
    x, y = scene.bx[t], scene.by[t]
    if np.isfinite(x):
        radius = float(scene.radius[t])
        _stamp_ball(pixels, float(x), float(y), float(scene.vx[t]), float(scene.vy[t]), radius, scene.style.ball)
    img = Image.fromarray(pixels)
    draw = ImageDraw.Draw(img)
    for player in (0, 1):
        _draw_body(draw, scene.bodies[player][t], scene.style.shirts[player])
    _draw_board(draw, scene.board, scene.scale)
    oy, ox = scene.offsets[t]
    pixels = np.asarray(img, np.int16) + scene.noise[oy : oy + h, ox : ox + w]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _label_row(name: str, visibility: int, x: float, y: float, status: int) -> str:
    """One Label.csv row; no coordinates when the ball is out of the picture."""
    if visibility == 0:
        return f"{name},0,,,{status}"
    # Truncate to 2 decimals so a centre at 511.999 is written 511.99, inside the picture.
    return f"{name},{visibility},{math.floor(x * 100) / 100:.2f},{math.floor(y * 100) / 100:.2f},{status}"


def _render_clip(
    clip_dir: Path,
    rng: np.random.Generator,
    game_rng: np.random.Generator,
    style: _Style,
    frames: int,
    size: tuple[int, int],
) -> np.ndarray:
    """Write one clip's JPEGs and Label.csv; return its (visibility, status) per frame."""
    scene = _stage(rng, game_rng, style, frames, size)
    visibility = np.zeros(frames, np.int8)
    statuses = np.zeros(frames, np.int8)
    rows = []
    digits = max(4, len(str(frames - 1)))
    for t in range(frames):
        visibility[t] = _visibility(scene, t)
        name = f"{t:0{digits}d}.jpg"
        _draw_frame(scene, t).save(clip_dir / name, quality=90)
        statuses[t] = int(scene.flight.status[t]) if visibility[t] > 0 else FLYING
        rows.append(_label_row(name, int(visibility[t]), scene.bx[t], scene.by[t], int(statuses[t])))
    (clip_dir / "Label.csv").write_text(",".join(TENNIS_HEADER) + "\n" + "\n".join(rows) + "\n")
    return np.stack([visibility, statuses])


# ------------------------------------------------------------------ entry point
def _checked_shape(games: int, clips: int, frames: int, size: tuple[int, int]) -> tuple[int, int]:
    """Refuse counts and frame sizes synth cannot draw; the frame size as ints."""
    if games < 1 or clips < 1 or frames < 1:
        raise UsageError(f"games, clips and frames must be at least 1 (got {games}, {clips}, {frames})")
    w, h = (int(v) for v in size)
    if w < 64 or h < 36 or w > 8192 or h > 8192:
        raise UsageError(f"size {w}x{h} is out of range: use between 64x36 and 8192x8192")
    return w, h


def _check_destination(out: Path) -> None:
    """Refuse an OUT that synth must not replace (a file, or a folder it did not write) or cannot write."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder; choose another output path")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise InputError(
            f"{out} is not empty and was not written by `tracknet data synth`; choose an empty or new folder"
        )
    require_writable(out, replaced=True)


def _write_games(work: Path, games: int, clips: int, frames: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """Every clip under work/gameN/ClipM, each from its own seeded generator (so any one clip is
    reproducible alone); (2, 4) frame counts: row 0 by visibility, row 1 by status."""
    counts = np.zeros((2, 4), np.int64)
    for game in range(1, games + 1):
        style = _game_style(np.random.default_rng([seed, game]), game)
        for clip in range(1, clips + 1):
            clip_dir = work / f"game{game}" / f"Clip{clip}"
            clip_dir.mkdir(parents=True)
            labels = _render_clip(
                clip_dir,
                np.random.default_rng([seed, game, clip]),
                np.random.default_rng([seed, game, 0]),
                style,
                frames,
                size,
            )
            for row in (0, 1):
                counts[row] += np.bincount(labels[row], minlength=4)[:4]
    return counts


def synthesize(
    out: Path,
    games: int = 4,
    clips: int = 5,
    frames: int = 100,
    size: tuple[int, int] = (512, 288),
    seed: int = 0,
) -> SynthReport:
    """Write OUT/gameN/ClipM/{0000.jpg..., Label.csv}; the same arguments give the same bytes.

    The defaults (4 games x 5 clips x 100 frames) are what the quickstart needs: with fewer clips a
    small model memorises the training clips' trajectories instead of learning to see the ball.

    OUT must be absent, empty, or an earlier synth output (which is replaced). The clips are built
    in a temporary folder beside OUT and renamed into place, so OUT is never half written.
    """
    w, h = _checked_shape(games, clips, frames, size)
    out = Path(out)
    _check_destination(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    remove_stale_temps(out)
    work = Path(tempfile.mkdtemp(prefix=temp_prefix(out, "synth"), dir=out.parent))
    try:
        counts = _write_games(work, games, clips, frames, (w, h), seed)
        meta = {
            "generator": "tracknet data synth",
            "games": games,
            "clips": clips,
            "frames": frames,
            "size": [w, h],
            "seed": seed,
        }
        (work / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
        publish_mode(work, directory=True)  # mkdtemp made it 0700
        _swap_into_place(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return SynthReport(
        out=out,
        games=games,
        clips=games * clips,
        frames=games * clips * frames,
        size=(w, h),
        seed=seed,
        visibility={k: int(counts[0, k]) for k in range(4)},
        status={k: int(counts[1, k]) for k in range(3)},
        seconds=time.perf_counter() - started,
    )


def _swap_into_place(work: Path, out: Path) -> None:
    if not out.exists():
        os.replace(work, out)
        return
    old = Path(tempfile.mkdtemp(prefix=temp_prefix(out, "old"), dir=out.parent))
    os.replace(out, old / "previous")
    try:
        os.replace(work, out)
    except BaseException:
        os.replace(old / "previous", out)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
