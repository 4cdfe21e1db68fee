// Renders templates with Apache Velocity 1.7 to produce expected outputs (see README.md).
// Not part of the build: a test oracle run by hand.
import org.apache.velocity.app.VelocityEngine;
import org.apache.velocity.VelocityContext;
import java.io.*;
import java.util.*;
import java.nio.file.*;

public class VelOracle {
    static int pos; static String s;
    static Object parse() { ws(); char c = s.charAt(pos);
        if (c=='{') { pos++; Map<String,Object> m = new LinkedHashMap<>(); ws(); if (s.charAt(pos)=='}') {pos++; return m;}
            while (true) { ws(); String k = (String) parse(); ws(); pos++; Object v = parse(); m.put(k, v); ws(); if (s.charAt(pos++)=='}') return m; } }
        if (c=='[') { pos++; List<Object> l = new ArrayList<>(); ws(); if (s.charAt(pos)==']') {pos++; return l;}
            while (true) { l.add(parse()); ws(); if (s.charAt(pos++)==']') return l; } }
        if (c=='"') { pos++; StringBuilder b = new StringBuilder(); while (s.charAt(pos)!='"') { char d = s.charAt(pos++); if (d=='\\') { char e = s.charAt(pos++); if (e=='n') b.append('\n'); else if (e=='t') b.append('\t'); else if (e=='u') { b.append((char)Integer.parseInt(s.substring(pos,pos+4),16)); pos+=4;} else b.append(e);} else b.append(d);} pos++; return b.toString(); }
        if (s.startsWith("true",pos)) {pos+=4; return Boolean.TRUE;}
        if (s.startsWith("false",pos)) {pos+=5; return Boolean.FALSE;}
        if (s.startsWith("null",pos)) {pos+=4; return null;}
        int st = pos; while (pos < s.length() && "+-0123456789.eE".indexOf(s.charAt(pos))>=0) pos++;
        String n = s.substring(st,pos); if (n.contains(".")||n.contains("e")||n.contains("E")) return Double.valueOf(n);
        long L = Long.parseLong(n); if (L >= Integer.MIN_VALUE && L <= Integer.MAX_VALUE) return (int) L; return L; }
    static void ws() { while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) pos++; }

    public static void main(String[] a) throws Exception {
        VelocityEngine ve = new VelocityEngine();
        ve.setProperty("runtime.log.logsystem.class", "org.apache.velocity.runtime.log.NullLogChute");
        ve.init();
        String ctxJson = a.length > 0 ? new String(Files.readAllBytes(Paths.get(a[0])), "UTF-8") : "{}";
        String all = new String(System.in.readAllBytes(), "UTF-8");
        String[] cases = all.split("\n@@@@\n", -1);
        for (String c : cases) {
            s = ctxJson; pos = 0;
            @SuppressWarnings("unchecked") Map<String,Object> m = (Map<String,Object>) parse();
            VelocityContext ctx = new VelocityContext();
            for (Map.Entry<String,Object> e : m.entrySet()) ctx.put(e.getKey(), e.getValue());
            StringWriter w = new StringWriter();
            try { ve.evaluate(ctx, w, "t", c); System.out.print("<<<" + w + ">>>\n"); }
            catch (Throwable t) { System.out.print("<<<!!ERR " + t.getClass().getSimpleName() + ": " + t.getMessage() + ">>>\n"); }
        }
    }
}
