/** The parser's output (prom2json's shape): one family per metric name. */
declare module 'parse-prometheus-text-format' {
  interface Family {
    name: string;
    help: string;
    type: string;
    metrics: {
      value?: string;
      labels?: Record<string, string>;
      buckets?: Record<string, string>;
      count?: string;
    }[];
  }
  export default function parsePrometheusTextFormat(text: string): Family[];
}
