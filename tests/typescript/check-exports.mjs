// Compares static/hub.d.ts with the running static/hub.js, so neither can drift from the other:
//   node check-exports.mjs [hub.d.ts] [hub.js]
// - the module's exports are exactly the values the declarations export;
// - every field and method of each exported class (an instance's own fields, its prototype
//   chain's methods and getters) is declared, publicly or `private` (internal to hub.js);
// - every required member the declarations add is really there;
// - no method takes more arguments than its declaration accepts.
// Prints `ok: ...` and exits 0, or prints every mismatch and exits 1.

import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const here = dirname(fileURLToPath(import.meta.url));
const dts = resolve(process.argv[2] || `${here}/../../static/hub.d.ts`);
const js = resolve(process.argv[3] || `${here}/../../static/hub.js`);
const problems = [];

// The declarations, as the compiler reads them.
const program = ts.createProgram([dts], {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
  types: [],
});
const diagnostics = ts.getPreEmitDiagnostics(program);
for (const d of diagnostics) problems.push(`hub.d.ts does not compile: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
const checker = program.getTypeChecker();
const source = program.getSourceFile(dts);
const moduleSymbol = source && checker.getSymbolAtLocation(source);
if (!moduleSymbol) {
  console.log(`${dts} is not a module`);
  process.exit(1);
}
const declared = new Map(
  checker
    .getExportsOfModule(moduleSymbol)
    .filter((s) => s.flags & ts.SymbolFlags.Value)
    .map((s) => [s.name, s]),
);

// The module, as a browser would load it (nothing in it touches the DOM at import time).
const mod = await import(pathToFileURL(js).href);
const exported = Object.keys(mod);
for (const name of exported) if (!declared.has(name)) problems.push(`hub.js exports ${name}, which hub.d.ts does not declare`);
for (const name of declared.keys()) if (!(name in mod)) problems.push(`hub.d.ts declares ${name}, which hub.js does not export`);

/** One instance of each class, made the cheapest way its constructor allows. */
const samples = {
  HubClient: () => new mod.HubClient({ url: 'http://127.0.0.1:9' }),
  HubError: () => new mod.HubError('bad_request', 'sample'),
  SessionView: () => new mod.SessionView('ses_sample'),
};

const GETTER = Symbol('getter');

/** Field, method and getter names of a running instance, from its own keys up its prototypes. */
function runtimeMembers(instance) {
  const names = new Map(Object.keys(instance).map((k) => [k, instance[k]]));
  for (let proto = Object.getPrototypeOf(instance); proto && proto !== Object.prototype && proto !== Error.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
      if (k !== 'constructor' && !names.has(k)) names.set(k, 'value' in d ? d.value : GETTER);
    }
  }
  return names;
}

/** The most arguments any call signature of a declared member accepts (Infinity with a rest). */
function maxArity(symbol) {
  const type = checker.getTypeOfSymbol(symbol);
  let most = -1;
  for (const sig of type.getCallSignatures()) {
    const rest = sig.getDeclaration()?.parameters.some((p) => p.dotDotDotToken);
    most = Math.max(most, rest ? Infinity : sig.getParameters().length);
  }
  return most;
}

let members = 0;
for (const [name, symbol] of declared) {
  if (!(symbol.flags & ts.SymbolFlags.Class)) {
    if (typeof mod[name] !== 'function') problems.push(`${name} is declared as a function but is ${typeof mod[name]}`);
    else if (mod[name].length > maxArity(symbol)) problems.push(`${name} takes ${mod[name].length} arguments, more than declared`);
    continue;
  }
  const make = samples[name];
  if (!make) {
    problems.push(`no sample instance for the class ${name}: add one to check-exports.mjs`);
    continue;
  }
  const instance = make();
  const running = runtimeMembers(instance);
  const props = new Map(checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(symbol)).map((p) => [p.name, p]));
  for (const [member, value] of running) {
    members++;
    const decl = props.get(member);
    if (!decl) {
      problems.push(`${name}.${member} exists in hub.js but is not declared (declare it, or \`private ${member};\` if it is internal)`);
      continue;
    }
    const isPrivate = decl.declarations?.some((d) => ts.getCombinedModifierFlags(d) & ts.ModifierFlags.Private);
    if (typeof value === 'function' && !isPrivate && value.length > maxArity(decl)) {
      problems.push(`${name}.${member} takes ${value.length} arguments, more than its declaration accepts`);
    }
  }
  for (const [member, decl] of props) {
    const ownDeclaration = decl.declarations?.some((d) => d.getSourceFile().fileName === source.fileName);
    const optional = decl.flags & ts.SymbolFlags.Optional;
    if (ownDeclaration && !optional && !running.has(member)) {
      problems.push(`hub.d.ts declares ${name}.${member}, which hub.js does not have`);
    }
  }
}

if (problems.length) {
  for (const p of problems) console.log(p);
  process.exit(1);
}
console.log(`ok: ${exported.length} exports (${exported.join(', ')}) and ${members} class members match hub.d.ts`);
