// Compile each MDX file named on the command line with @mdx-js/mdx v3 (and
// remark-directive, as Docusaurus does for admonitions); print the container
// directive names found in each, one JSON line per file. Exit 1 on any error.
import {compileAll} from './compile-all.mjs';

await compileAll(process.argv.slice(2));
