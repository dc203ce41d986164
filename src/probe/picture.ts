// A saliency map as a picture: the map's colours over the image in grey, with a colour bar, as a
// PNG (pngjs). Engine-free and HTTP-free: numbers in, bytes out.
//
// - A pixel's value is the sum of the map over its channels (the signed total a small change of
//   the pixel's brightness would make).
// - Signed maps (gradients) use a diverging scale, blue (negative) through white to red
//   (positive), symmetric about 0: ±max|value|. Occlusion maps use a sequential scale, pale
//   yellow to dark red, from 0 to their largest drop (negative drops drawn as 0) — unless some
//   drop is negative enough to matter (below −1% of the largest), when the diverging scale is used.
// - The colour is laid over the image's grey (its mean over channels, scaled by its range) with
//   an opacity proportional to |value|/max, so weak pixels show the image and strong ones the colour.
// - Small images are enlarged by a whole factor (nearest neighbour) to about 256 pixels across.
// - The bar on the right runs from the scale's top (the highest value) to its bottom; its ends are
//   the answer's `colourScale` (pictures carry no text).
//
// What a picture costs is the PNG's pixels, colour bar and gap included (a 1×N strip is drawn
// N rows of 21 pixels): `pictureLayout` says how large it will be before anything is built, and
// the prober refuses one past MAX_PICTURE_PIXELS or MAX_PICTURE_SIDE. The input is plain data (no
// functions), so the service can draw it on a worker thread.

import { PNG } from 'pngjs';

export interface Picture {
  height: number;
  width: number;
  channels: number;
  /** Where a pixel's channels are in `pixels` and `map`: channels last (hwc) or first (chw). */
  layout: 'hwc' | 'chw';
  /** The image, for the grey underlay. */
  pixels: Float64Array;
  range: [number, number];
  /** The map, element by element, in the image's layout. */
  map: Float64Array;
  /** gradient: diverging; occlusion: sequential (diverging when its drops go negative). */
  kind: 'gradient' | 'occlusion';
}

export interface ColourScale {
  kind: 'diverging' | 'sequential';
  /** The value at the bar's bottom and top. */
  min: number;
  max: number;
}

type Rgb = [number, number, number];

/** Blue, white, red: the ends of a diverging scale (as Moreland's cool-warm). */
const DIVERGING: Rgb[] = [
  [59, 76, 192],
  [247, 247, 247],
  [180, 4, 38],
];
/** Pale yellow, orange, dark red (as ColorBrewer's YlOrRd). */
const SEQUENTIAL: Rgb[] = [
  [255, 255, 204],
  [253, 141, 60],
  [189, 0, 38],
];

/** The largest picture drawn, in the PNG's pixels (colour bar and gap included). */
export const MAX_PICTURE_PIXELS = 1 << 20;
/** The longest side of a picture drawn, in the PNG's pixels: a thin strip is refused, not drawn a million rows tall. */
export const MAX_PICTURE_SIDE = 4096;

const TARGET_SIDE = 256;
const MAX_ZOOM = 16;
const BAR_GAP = 6;
const BAR_WIDTH = 14;
const OPACITY = 0.85;

/** The PNG an image of height × width pixels is drawn as: its enlargement, its size, and its pixels (colour bar included). */
export interface PictureLayout {
  zoom: number;
  /** The map's columns (width × zoom); the bar's gap and the bar follow. */
  mapWidth: number;
  width: number;
  height: number;
  pixels: number;
}

export function pictureLayout(height: number, width: number): PictureLayout {
  const zoom = Math.max(1, Math.min(MAX_ZOOM, Math.floor(TARGET_SIDE / Math.max(height, width))));
  const mapWidth = width * zoom;
  const pngWidth = mapWidth + BAR_GAP + BAR_WIDTH;
  return { zoom, mapWidth, width: pngWidth, height: height * zoom, pixels: pngWidth * height * zoom };
}

/** Why a picture of this layout is not drawn (the bound it passes), or undefined when it may be. */
export function pictureTooLarge(layout: PictureLayout): string | undefined {
  if (layout.width > MAX_PICTURE_SIDE || layout.height > MAX_PICTURE_SIDE) {
    return `its sides would be ${layout.width}×${layout.height} pixels (colour bar included), and a picture's side is at most ${MAX_PICTURE_SIDE}`;
  }
  if (layout.pixels > MAX_PICTURE_PIXELS) {
    return `it would have ${layout.pixels} pixels (${layout.width}×${layout.height}, colour bar included), more than the ${MAX_PICTURE_PIXELS} a picture may have`;
  }
  return undefined;
}

/** Linear interpolation along a three-stop ramp, t in [0, 1]. */
function ramp(stops: Rgb[], t: number): Rgb {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  return [0, 1, 2].map((k) => stops[i]![k]! + f * (stops[i + 1]![k]! - stops[i]![k]!)) as Rgb;
}

/** Where a value sits on the scale: 0 at the bottom, 1 at the top. */
function position(scale: ColourScale, value: number): number {
  return scale.max === scale.min ? 0.5 : (value - scale.min) / (scale.max - scale.min);
}

function colourOf(scale: ColourScale, value: number): { colour: Rgb; strength: number } {
  const t = position(scale, value);
  if (scale.kind === 'diverging') return { colour: ramp(DIVERGING, t), strength: Math.abs(2 * t - 1) };
  return { colour: ramp(SEQUENTIAL, t), strength: Math.min(1, Math.max(0, t)) };
}

function scaleOf(values: Float64Array, kind: Picture['kind']): ColourScale {
  let largest = 0;
  let lowest = 0;
  let highest = 0;
  for (const v of values) {
    largest = Math.max(largest, Math.abs(v));
    lowest = Math.min(lowest, v);
    highest = Math.max(highest, v);
  }
  // An all-zero map still gets a scale (and is drawn as the image alone).
  const top = largest === 0 ? 1 : largest;
  if (kind === 'occlusion' && lowest >= -0.01 * top) return { kind: 'sequential', min: 0, max: highest === 0 ? 1 : highest };
  return { kind: 'diverging', min: -top, max: top };
}

/** The heat map over the image, with its colour bar, as PNG bytes; and the scale it used. */
export function renderSaliency(picture: Picture): { png: Buffer; colourScale: ColourScale } {
  const { height, width, channels, range } = picture;
  const layout = pictureLayout(height, width);
  const refused = pictureTooLarge(layout);
  // The prober refuses such a picture before probing; this is the builder counting before it builds.
  if (refused !== undefined) throw new RangeError(`picture not drawn: ${refused}`);
  const pixels = height * width;
  const element = (p: number, c: number) => (picture.layout === 'hwc' ? p * channels + c : c * pixels + p);
  const values = new Float64Array(pixels);
  const grey = new Float64Array(pixels);
  for (let p = 0; p < pixels; p++) {
    let sum = 0;
    let brightness = 0;
    for (let c = 0; c < channels; c++) {
      sum += picture.map[element(p, c)]!;
      brightness += picture.pixels[element(p, c)]!;
    }
    values[p] = sum;
    grey[p] = Math.min(1, Math.max(0, (brightness / channels - range[0]) / (range[1] - range[0])));
  }
  const colourScale = scaleOf(values, picture.kind);
  const { zoom, mapWidth } = layout;
  const png = new PNG({ width: layout.width, height: layout.height });
  png.data.fill(255);
  const put = (x: number, y: number, rgb: Rgb) => {
    const at = (y * png.width + x) * 4;
    png.data[at] = Math.round(rgb[0]);
    png.data[at + 1] = Math.round(rgb[1]);
    png.data[at + 2] = Math.round(rgb[2]);
    png.data[at + 3] = 255;
  };
  for (let p = 0; p < pixels; p++) {
    const { colour, strength } = colourOf(colourScale, values[p]!);
    const alpha = OPACITY * strength;
    const g = 255 * grey[p]!;
    const rgb = colour.map((k) => (1 - alpha) * g + alpha * k) as Rgb;
    const [row, column] = [Math.floor(p / width), p % width];
    for (let dy = 0; dy < zoom; dy++) for (let dx = 0; dx < zoom; dx++) put(column * zoom + dx, row * zoom + dy, rgb);
  }
  for (let y = 0; y < png.height; y++) {
    // Top row: the scale's max; bottom row: its min.
    const t = png.height === 1 ? 1 : 1 - y / (png.height - 1);
    const rgb = ramp(colourScale.kind === 'diverging' ? DIVERGING : SEQUENTIAL, t);
    for (let x = mapWidth + BAR_GAP; x < png.width; x++) put(x, y, rgb);
  }
  return { png: PNG.sync.write(png), colourScale };
}
