// The fixture pages use <Highlight>, as Docusaurus's own docs do: provide it globally.
import React from 'react';
import MDXComponents from '@theme-original/MDXComponents';

export default {
  ...MDXComponents,
  Highlight: ({children, color}) => <span style={{backgroundColor: color}}>{children}</span>,
};
