export function ReviewPage(_props: Record<string, unknown>) {
  return <h1>Review</h1>;
}
