// The live value of an expression against the newest run of this canvas (POST /api/expression).
import { useEffect, useState } from "react";
import type { ExpressionResult } from "../types";

function caretLines(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf("\n") + 1;
  const lineEnd = text.indexOf("\n", offset);
  const line = text.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
  return `${line}\n${" ".repeat(offset - lineStart)}^`;
}

export function ExprPreview({
  path,
  text,
  evaluate,
}: {
  path: string;
  text: string;
  evaluate: (text: string) => Promise<ExpressionResult>;
}) {
  const [result, setResult] = useState<ExpressionResult | null>(null);
  const [failure, setFailure] = useState("");

  useEffect(() => {
    let current = true;
    const timer = setTimeout(() => {
      evaluate(text).then(
        (next) => {
          if (!current) return;
          setResult(next);
          setFailure("");
        },
        (error: unknown) => current && setFailure(error instanceof Error ? error.message : String(error)),
      );
    }, 350);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [text, evaluate]);

  let body;
  if (failure) body = <span className="preview-error">{failure}</span>;
  else if (!result) body = <span className="muted">evaluating…</span>;
  else if (result.ok) body = <code className="preview-value">{JSON.stringify(result.value, null, 2)}</code>;
  else if (result.noRun) body = <span className="muted">{result.error}</span>;
  else
    body = (
      <>
        {/* The server's message may carry its own caret lines; the caret is drawn here from the offset. */}
        <span className="preview-error">{result.offset !== undefined && result.offset !== null ? result.error.split("\n")[0] : result.error}</span>
        {result.offset !== undefined && result.offset !== null && <pre className="caret">{caretLines(text, result.offset)}</pre>}
      </>
    );
  return (
    <div className={`expr-preview${result && !result.ok && !result.noRun ? " error" : ""}`} data-testid={`expr-preview-${path}`}>
      <span className="preview-tag">preview</span> {body}
    </div>
  );
}
