// A saliency map as a picture: the map's colours over the image, with a colour bar labelled with
// its numbers, as a PNG (pngjs). Engine-free and HTTP-free: numbers in, bytes out.
//
// - A pixel's value is the sum of the map over its channels (the signed total a small change of
//   the pixel's brightness would make).
// - Signed maps (gradients, whatever the method) use a diverging scale, blue (negative) through
//   white to red (positive), symmetric about 0: ±max|value|. Occlusion maps use a sequential
//   scale, pale yellow to dark red, from 0 to their largest drop — unless some drop is negative
//   enough to matter (below −1% of the largest: removing that patch *raises* the output), when
//   the diverging scale is used, so that evidence against is drawn blue rather than as 0.
// - The image is drawn as paper and ink: the low end of `range` is paper (white), the high end
//   ink (dark grey), as MNIST's digits are stored (0 = background, 1 = ink). A pixel's ink is
//   its mean over channels placed in `range` (clamped to it).
// - The map's colour is multiplied by the image's shade (paper 1, ink 0.45; a multiply blend): on
//   paper a pixel has exactly the bar's colour for its value, on ink the same hue darker, so the
//   heat map is as strong as the bar says and the strokes stay readable under it. A value of 0
//   (or a negative drop on a sequential scale) leaves the image alone.
// - Small images are enlarged by a whole factor (nearest neighbour) to about 256 pixels across.
// - Under the map is the colour bar, left (the scale's min) to right (its max), and under the bar
//   its numbers — min, 0 on a diverging scale, max — in a built-in 5×7 bitmap font (no font
//   dependency), doubled when the picture is at least 192 pixels wide.
//
// What a picture costs is the PNG's pixels, colour bar and labels included (a 1,048,576 × 1 strip
// would be 132 × 1,048,610 pixels): `pictureLayout` says how large it will be before anything is
// built, and the prober refuses one past MAX_PICTURE_PIXELS or MAX_PICTURE_SIDE. The input is
// plain data (no functions), so the service can draw it on a worker thread.

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
/** Rows between the map and the bar, the bar's own, and the ticks' under it. */
const BAR_GAP = 6;
const BAR_HEIGHT = 14;
const TICK = 3;
/** The longest label: 3 significant digits, "-1.23e-5"; "-1.2e-308" at worst (labelOf). */
const LABEL_CHARS = 9;
/** A glyph is 5×7 font pixels, and a character 6 wide (a column of space); doubled on wide pictures. */
const GLYPH_WIDTH = 5;
const GLYPH_HEIGHT = 7;
const ADVANCE = 6;
const DOUBLE_FROM = 192;
/** The image's shade, by which the map's colour is multiplied: paper 1, ink 0.45 (dark, but a colour on it still shows its hue). */
const INK = 0.45;
const WHITE: Rgb = [255, 255, 255];

/** The PNG an image of height × width pixels is drawn as: its enlargement, its size, and its pixels (colour bar and labels included). */
export interface PictureLayout {
  zoom: number;
  /** The map's columns (width × zoom) and rows (height × zoom), from the top left; the bar and its labels are below. */
  mapWidth: number;
  mapHeight: number;
  /** The labels' scale: 1 or 2 PNG pixels per font pixel. */
  glyph: number;
  width: number;
  height: number;
  pixels: number;
}

export function pictureLayout(height: number, width: number): PictureLayout {
  const zoom = Math.max(1, Math.min(MAX_ZOOM, Math.floor(TARGET_SIDE / Math.max(height, width))));
  const mapWidth = width * zoom;
  const mapHeight = height * zoom;
  const glyph = mapWidth >= DOUBLE_FROM ? 2 : 1;
  // Two labels of LABEL_CHARS at the ends and a "0" in the middle must fit side by side.
  const pngWidth = Math.max(mapWidth, (2 * LABEL_CHARS + 4) * ADVANCE * glyph);
  const pngHeight = mapHeight + BAR_GAP + BAR_HEIGHT + TICK + 2 + GLYPH_HEIGHT * glyph + 2;
  return { zoom, mapWidth, mapHeight, glyph, width: pngWidth, height: pngHeight, pixels: pngWidth * pngHeight };
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

/** The bar's labels' characters, 5 columns × 7 rows each ('#' is ink). */
const FONT: Readonly<Record<string, readonly string[]>> = {
  '0': [' ### ', '#   #', '#  ##', '# # #', '##  #', '#   #', ' ### '],
  '1': ['  #  ', ' ##  ', '  #  ', '  #  ', '  #  ', '  #  ', ' ### '],
  '2': [' ### ', '#   #', '    #', '   # ', '  #  ', ' #   ', '#####'],
  '3': ['#####', '   # ', '  #  ', '   # ', '    #', '#   #', ' ### '],
  '4': ['   # ', '  ## ', ' # # ', '#  # ', '#####', '   # ', '   # '],
  '5': ['#####', '#    ', '#### ', '    #', '    #', '#   #', ' ### '],
  '6': ['  ## ', ' #   ', '#    ', '#### ', '#   #', '#   #', ' ### '],
  '7': ['#####', '    #', '   # ', '  #  ', ' #   ', ' #   ', ' #   '],
  '8': [' ### ', '#   #', '#   #', ' ### ', '#   #', '#   #', ' ### '],
  '9': [' ### ', '#   #', '#   #', ' ####', '    #', '   # ', ' ##  '],
  '.': ['     ', '     ', '     ', '     ', '     ', ' ##  ', ' ##  '],
  '-': ['     ', '     ', '     ', '#####', '     ', '     ', '     '],
  '+': ['     ', '  #  ', '  #  ', '#####', '  #  ', '  #  ', '     '],
  e: ['     ', '     ', ' ### ', '#   #', '#####', '#    ', ' ### '],
};

/** A bar's number as a label of at most LABEL_CHARS characters: 3 significant digits. */
export function labelOf(value: number): string {
  if (value === 0 || !Number.isFinite(value)) return value === 0 ? '0' : String(value);
  const magnitude = Math.abs(value);
  const plain = magnitude >= 1e-3 && magnitude < 1e5;
  // Trailing zeros of the mantissa go: 1.50e+7 -> 1.5e+7, 2.00e+7 -> 2e+7.
  const trim = (text: string) => text.replace(/\.?0+e/, 'e');
  let text = plain ? String(Number(value.toPrecision(3))) : trim(value.toExponential(2));
  if (text.length > LABEL_CHARS) text = trim(value.toExponential(1));
  return text;
}

/** The width of a label in font pixels (no space after its last character). */
const textWidth = (text: string) => Math.max(0, text.length * ADVANCE - 1);

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

/** The heat map over the image, with its labelled colour bar, as PNG bytes; and the scale it used. */
export function renderSaliency(picture: Picture): { png: Buffer; colourScale: ColourScale } {
  const { height, width, channels, range } = picture;
  const layout = pictureLayout(height, width);
  const refused = pictureTooLarge(layout);
  // The prober refuses such a picture before probing; this is the builder counting before it builds.
  if (refused !== undefined) throw new RangeError(`picture not drawn: ${refused}`);
  const pixels = height * width;
  const element = (p: number, c: number) => (picture.layout === 'hwc' ? p * channels + c : c * pixels + p);
  const values = new Float64Array(pixels);
  const level = new Float64Array(pixels);
  for (let p = 0; p < pixels; p++) {
    let sum = 0;
    let brightness = 0;
    for (let c = 0; c < channels; c++) {
      sum += picture.map[element(p, c)]!;
      brightness += picture.pixels[element(p, c)]!;
    }
    values[p] = sum;
    // range[0] is paper, range[1] ink.
    const ink = Math.min(1, Math.max(0, (brightness / channels - range[0]) / (range[1] - range[0])));
    level[p] = 1 - (1 - INK) * ink;
  }
  const colourScale = scaleOf(values, picture.kind);
  const { zoom, mapHeight, glyph } = layout;
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
    // A value of 0 (or a negative drop on a sequential scale) leaves the image as it is.
    const { colour, strength } = colourOf(colourScale, values[p]!);
    const shade = level[p]!;
    const rgb = (strength > 0 ? colour : WHITE).map((k) => k * shade) as Rgb;
    const [row, column] = [Math.floor(p / width), p % width];
    for (let dy = 0; dy < zoom; dy++) for (let dx = 0; dx < zoom; dx++) put(column * zoom + dx, row * zoom + dy, rgb);
  }
  // The bar: its left column is the scale's min, its right column its max.
  const barTop = mapHeight + BAR_GAP;
  const stops = colourScale.kind === 'diverging' ? DIVERGING : SEQUENTIAL;
  for (let x = 0; x < png.width; x++) {
    const rgb = ramp(stops, png.width === 1 ? 1 : x / (png.width - 1));
    for (let y = barTop; y < barTop + BAR_HEIGHT; y++) put(x, y, rgb);
  }
  // Its numbers, each under a tick at its place on the bar (the ends' aligned to the ends).
  const ink: Rgb = [15, 23, 42];
  const tickTop = barTop + BAR_HEIGHT;
  const textTop = tickTop + TICK + 2;
  const marks: { value: number; align: 'left' | 'centre' | 'right' }[] = [
    { value: colourScale.min, align: 'left' },
    ...(colourScale.kind === 'diverging' ? [{ value: 0, align: 'centre' as const }] : []),
    { value: colourScale.max, align: 'right' },
  ];
  for (const { value, align } of marks) {
    const x = Math.round(position(colourScale, value) * (png.width - 1));
    for (let y = tickTop; y < tickTop + TICK; y++) for (let dx = 0; dx < glyph; dx++) put(Math.min(png.width - 1, Math.max(0, x + dx - (align === 'right' ? glyph - 1 : 0))), y, ink);
    const text = labelOf(value);
    const span = textWidth(text) * glyph;
    const left = align === 'left' ? 0 : align === 'right' ? png.width - span : Math.round(x - span / 2);
    drawText(text, left, textTop, glyph, (px, py) => put(px, py, ink), png.width, png.height);
  }
  return { png: PNG.sync.write(png), colourScale };
}

/** Draws a label with its top left at (left, top), `scale` PNG pixels per font pixel; what falls outside the PNG is skipped. */
function drawText(text: string, left: number, top: number, scale: number, plot: (x: number, y: number) => void, width: number, height: number): void {
  for (let i = 0; i < text.length; i++) {
    const rows = FONT[text[i]!];
    if (rows === undefined) continue;
    for (let r = 0; r < GLYPH_HEIGHT; r++) {
      for (let c = 0; c < GLYPH_WIDTH; c++) {
        if (rows[r]![c] !== '#') continue;
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const x = left + (i * ADVANCE + c) * scale + dx;
            const y = top + r * scale + dy;
            if (x >= 0 && x < width && y >= 0 && y < height) plot(x, y);
          }
        }
      }
    }
  }
}
