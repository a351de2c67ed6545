// Request bodies of the extender's verbs, read as text and parsed only after their nesting depth is
// known to be small. JSON.parse itself copes with deep input, but everything after it that walks
// the value recursively (zod, JSON.stringify of the answer, the logger) does not: a `Nodes` item
// nested 100,000 arrays deep ended in a 500 "Maximum call stack size exceeded". ExtenderArgs is
// about 15 levels deep at most (a Pod's managedFields are the deepest part), so 100 is generous.
import express, { type NextFunction, type Request, type Response } from 'express';

export const MAX_JSON_DEPTH = 100;

/** A request the caller got wrong: answered 400 with the message. */
export class BadRequest extends Error {
  readonly status = 400;
}

/**
 * The offset of the first `[` or `{` that opens level `limit + 1`, or -1 when the text never
 * nests that deep. Brackets inside strings (with their escapes) do not count. One pass, no
 * recursion, no allocation: it runs before the text is parsed.
 */
export function tooDeepAt(text: string, limit: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > limit) return i;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return -1;
}

/** Parses JSON text after bounding its depth; a BadRequest says what was wrong and where. */
export function parseBoundedJson(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  const at = tooDeepAt(text, maxDepth);
  if (at >= 0)
    throw new BadRequest(
      `JSON body nested deeper than ${maxDepth} levels (at character ${at}); ExtenderArgs is far shallower`,
    );
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BadRequest(`malformed JSON body: ${(e as Error).message}`);
  }
}

/**
 * Middleware: the body as text (any content type, at most `limit`, body-parser's size string),
 * then `req.body` = the parsed value. Too large stays body-parser's 413.
 */
export function boundedJsonBody(limit: string, maxDepth = MAX_JSON_DEPTH) {
  const text = express.text({ limit, type: () => true });
  return [
    text,
    (req: Request, _res: Response, next: NextFunction): void => {
      req.body = parseBoundedJson(typeof req.body === 'string' ? req.body : '', maxDepth);
      next();
    },
  ];
}
