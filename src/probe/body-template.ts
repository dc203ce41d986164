// The target's request body: a JSON template in which every string value "$input" is replaced by
// the (perturbed) input. The template is serialised once, split around the placeholders, and each
// query only joins the pieces around the input's JSON text.

import { randomUUID } from 'node:crypto';

export const INPUT_PLACEHOLDER = '$input';

export class BodyTemplate {
  private readonly pieces: string[];
  /** UTF-8 bytes of the template around the placeholders. */
  private readonly fixedBytes: number;

  private constructor(pieces: string[]) {
    this.pieces = pieces;
    this.fixedBytes = pieces.reduce((sum, piece) => sum + Buffer.byteLength(piece, 'utf8'), 0);
  }

  /** How many times the input appears in each body. */
  get placeholders(): number {
    return this.pieces.length - 1;
  }

  /** The UTF-8 size of the body for an input whose JSON text is `inputBytes` bytes long. */
  bytes(inputBytes: number): number {
    return this.fixedBytes + this.placeholders * inputBytes;
  }

  /** The template, or undefined when no string value in it is "$input" (keys do not count). */
  static compile(template: unknown): BodyTemplate | undefined {
    // A marker no client can guess stands in for each placeholder while the template is serialised.
    const marker = `\u0000${INPUT_PLACEHOLDER}:${randomUUID()}`;
    const text = JSON.stringify(template, (_key, value: unknown) => (value === INPUT_PLACEHOLDER ? marker : value));
    if (text === undefined) return undefined;
    const pieces = text.split(JSON.stringify(marker));
    return pieces.length > 1 ? new BodyTemplate(pieces) : undefined;
  }

  /** The body for one input, given as its JSON text. */
  render(inputJson: string): string {
    return this.pieces.join(inputJson);
  }
}
