/** One process's Prometheus text exposition and the labels that tell it apart. */
export interface Exposition {
  labels: Record<string, string>;
  text: string;
}

interface Family {
  header: string[];
  samples: string[];
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * Merges the expositions of several processes into one: every sample gets its process's
 * labels, and the samples of one metric family stay together under one HELP/TYPE header,
 * as the text format requires.
 */
export function mergeExpositions(parts: readonly Exposition[]): string {
  const families = new Map<string, Family>();
  for (const part of parts) {
    const extra = Object.entries(part.labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',');
    let current: Family | undefined;
    for (const line of part.text.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('#')) {
        const [, kind, name] = line.split(' ', 3);
        if ((kind === 'HELP' || kind === 'TYPE') && name) {
          current = families.get(name);
          if (!current) families.set(name, (current = { header: [], samples: [] }));
          if (!current.header.some((h) => h.startsWith(`# ${kind} `))) current.header.push(line);
        }
        continue;
      }
      const fam = current ?? orphanFamily(families);
      fam.samples.push(extra ? withLabels(line, extra) : line);
    }
  }
  let out = '';
  for (const f of families.values()) {
    for (const h of f.header) out += `${h}\n`;
    for (const s of f.samples) out += `${s}\n`;
  }
  return out;
}

function orphanFamily(families: Map<string, Family>): Family {
  let f = families.get('');
  if (!f) families.set('', (f = { header: [], samples: [] }));
  return f;
}

function withLabels(sample: string, extra: string): string {
  const brace = sample.indexOf('{');
  const space = sample.indexOf(' ');
  if (brace !== -1 && (space === -1 || brace < space)) {
    const inner = sample.slice(brace + 1);
    return `${sample.slice(0, brace)}{${extra}${inner.startsWith('}') ? '' : ','}${inner}`;
  }
  return `${sample.slice(0, space)}{${extra}}${sample.slice(space)}`;
}
