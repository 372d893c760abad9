/** An error with a stable code and an HTTP status, answered as ARM's `{"error":{"code","message","target"}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly target?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): { error: { code: string; message: string; target?: string } } {
    return { error: { code: this.code, message: this.message, ...(this.target ? { target: this.target } : {}) } };
  }
}

export const badRequest = (code: string, message: string, target?: string) => new ApiError(400, code, message, target);
export const notFound = (code: string, message: string) => new ApiError(404, code, message);
export const conflict = (code: string, message: string) => new ApiError(409, code, message);

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
