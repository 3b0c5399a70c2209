// Stub, written for this corpus (not from facebook/docusaurus, whose website
// component is a TypeScript file with CSS modules): the browser-window frame the
// pages wrap their rendered examples in, as a plain <div>.
import React from 'react';

export default function BrowserWindow({children, minHeight, url = 'http://localhost:3000'}) {
  return (
    <div className="browser-window" style={{minHeight}}>
      <div className="browser-window-header">{url}</div>
      <div className="browser-window-body">{children}</div>
    </div>
  );
}
