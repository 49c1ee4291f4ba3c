/**
 * The keys of a JSON object's top level, in order, duplicates kept (JSON.parse keeps only
 * the last of a duplicated key, so it cannot see the defect).
 */
export function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"') {
      let j = i + 1;
      while (j < line.length && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(line.slice(i, j + 1)) as string);
      expectKey = false;
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return keys;
}

/** The first key written twice at the top level, or null. */
export function duplicateKey(line: string): string | null {
  const seen = new Set<string>();
  for (const k of topLevelKeys(line)) {
    if (seen.has(k)) return k;
    seen.add(k);
  }
  return null;
}
