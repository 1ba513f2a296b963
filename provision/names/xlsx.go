package names

import (
	"bytes"
	"fmt"

	"github.com/xuri/excelize/v2"
)

// xlsxUnzipLimit bounds what a workbook may unpack to (a zip bomb stops
// here, not in the machine's memory).
const xlsxUnzipLimit = 1 << 30

// readXLSX reads the first sheet of a workbook. Cells are read as stored,
// not as displayed: a long number (an IMEI) is its digits, not the
// 8.68139E+14 Excel shows in a narrow column; one stored in scientific
// notation, or typed so as text, is still refused by pick.
func readXLSX(data []byte) ([]record, Source, error) {
	src := Source{Kind: "xlsx"}
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: xlsxUnzipLimit})
	if err != nil {
		return nil, src, fmt.Errorf("%w: not a readable .xlsx workbook (%v): save it from Excel as .xlsx or as CSV UTF-8", ErrFormat, err)
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, src, fmt.Errorf("%w: the workbook has no sheet", ErrNoNames)
	}
	src.Sheet, src.Sheets = sheets[0], len(sheets)
	rows, err := f.Rows(src.Sheet)
	if err != nil {
		return nil, src, fmt.Errorf("%w: sheet %q: %v", ErrFormat, src.Sheet, err)
	}
	defer rows.Close()
	var recs []record
	for n := 1; rows.Next(); n++ {
		cols, err := rows.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			return nil, src, fmt.Errorf("%w: sheet %q row %d: %v", ErrFormat, src.Sheet, n, err)
		}
		recs = append(recs, record{line: n, fields: cols})
	}
	if err := rows.Error(); err != nil {
		return nil, src, fmt.Errorf("%w: sheet %q: %v", ErrFormat, src.Sheet, err)
	}
	return recs, src, nil
}
